"use strict";
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
