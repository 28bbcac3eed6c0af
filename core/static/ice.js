"use strict";
// What the publish and watch pages share: the WHIP/WHEP offer, and the ICE servers an
// endpoint announces.

// POSTs an SDP offer to a WHIP/WHEP endpoint with the page's headers (`auth`: the bearer
// token) and returns the answer's response and the session's URL. A node that should not take
// the session answers 307 to another node; the browser follows it, but a redirect to another
// origin drops the Authorization header (Fetch standard), so a redirected offer refused for
// want of a token is sent again, with the token, to the node it was sent to.
async function offerTo(endpoint, sdp, auth) {
  const post = (url) => fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp", ...auth }, body: sdp });
  let res = await post(endpoint);
  if (res.redirected && (res.status === 401 || res.status === 403) && auth.Authorization) res = await post(res.url);
  if (res.status !== 201) throw new Error(res.status + " " + (await res.text()));
  // The session lives on the node that answered: its Location is relative to that node.
  const session = new URL(res.headers.get("Location"), res.url).href;
  return { answer: await res.text(), session };
}
// The ICE servers a WHIP/WHEP endpoint announces (RFC 9725 section 4.6: Link headers with
// rel="ice-server"), asked with OPTIONS before the offer is made: the node takes no trickled
// candidates, so relay candidates from a TURN server must already be in the offer.
async function iceServersOf(endpoint) {
  let header;
  try {
    const res = await fetch(endpoint, { method: "OPTIONS" });
    header = res.headers.get("link");
  } catch (e) {
    return [];
  }
  if (!header) return [];
  const servers = [];
  // Each link: <uri> then ;key="quoted" or ;key=token parameters. Commas inside quotes or the
  // URI do not separate links.
  const links = header.match(/<[^>]*>(?:\s*;\s*[^,;=\s]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,;]*))*/g) || [];
  for (const link of links) {
    const param = (key) => {
      const m = link.match(new RegExp(";\\s*" + key + "\\s*=\\s*(?:\"((?:[^\"\\\\]|\\\\.)*)\"|([^,;\\s]*))"));
      if (!m) return undefined;
      return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
    };
    if (param("rel") !== "ice-server") continue;
    const server = { urls: link.slice(1, link.indexOf(">")) };
    if (param("username") !== undefined) {
      server.username = param("username");
      server.credential = param("credential");
    }
    servers.push(server);
  }
  return servers;
}
