//! The mux's system calls: the socket registered for reading only, and `sendmmsg` with UDP GSO.
//! The mux's only `unsafe` code is here.

use super::*;

/// Registers the mux's socket with the reactor for reading only.
#[allow(unsafe_code)]
pub(super) fn register_readable(
    socket: std::net::UdpSocket,
) -> std::io::Result<AsyncFd<std::net::UdpSocket>> {
    // SAFETY: the `UdpSocket` owns its descriptor and keeps it open, unchanged, for as long as
    // the `AsyncFd` that owns the socket exists.
    Ok(unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?)
}

/// One message of a flush: `outbox[start..end]`, to one destination; several datagrams leave as
/// one UDP GSO send of `segment`-byte segments (the last may be shorter), one has `segment` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Message {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) segment: u16,
}

/// Room for one `UDP_SEGMENT` control message (`CMSG_SPACE(2)` is 24 bytes on 64-bit Linux).
type CmsgBuf = [u64; 4];

/// One `sendmmsg` of the leading `messages` (at most [`SEND_BATCH`]); returns how many messages
/// went. Each message is one iovec over its datagrams, which lie back to back in the outbox
/// (several datagrams: a GSO send of them). Direct, because `nix`'s `sendmmsg` result reads memory it never
/// wrote, and it gives every message the same control messages.
#[allow(unsafe_code)]
pub(super) fn sendmmsg_messages(
    fd: std::os::fd::RawFd,
    outbox: &Outbox,
    messages: &[Message],
) -> std::io::Result<usize> {
    let n = messages.len().min(SEND_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let addrs: [socket2::SockAddr; SEND_BATCH] =
        std::array::from_fn(|k| socket2::SockAddr::from(outbox.to(messages[k.min(n - 1)].start)));
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SEND_BATCH];
    let mut cmsgs: [CmsgBuf; SEND_BATCH] = [[0; 4]; SEND_BATCH];
    // SAFETY: `mmsghdr` is plain old data; all zeroes is a valid (empty) header.
    let mut headers: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    for (k, m) in messages[..n].iter().enumerate() {
        let bytes = outbox.span(m.start..m.end);
        iovecs[k] = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        let h = &mut headers[k].msg_hdr;
        h.msg_name = addrs[k].as_ptr() as *mut libc::c_void;
        h.msg_namelen = addrs[k].len();
        h.msg_iov = &mut iovecs[k];
        h.msg_iovlen = 1;
        if m.segment != 0 {
            h.msg_control = cmsgs[k].as_mut_ptr() as *mut libc::c_void;
            // SAFETY: `cmsgs[k]` is 32 bytes, aligned for `cmsghdr`, and holds CMSG_SPACE(2);
            // CMSG_FIRSTHDR of a header whose control buffer is that large is non-null.
            unsafe {
                h.msg_controllen = libc::CMSG_SPACE(2) as _;
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(2) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, m.segment);
            }
        }
    }
    // SAFETY: `headers[..n]` point at `addrs`, `iovecs` and `cmsgs` (alive until the call
    // returns) and through the iovecs at the outbox's buffers, which the kernel only reads.
    let sent = unsafe {
        libc::sendmmsg(
            fd,
            headers.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sendmmsg_carries_gso_frames_and_single_datagrams_in_order() {
        use std::os::fd::AsRawFd;
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let datagram = |tag: u8, len: usize| vec![tag; len];
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // A frame of three to `a` (the last shorter), one datagram to `b`, one more to `a`.
        let mut outbox = Outbox::default();
        for (to, tag, len) in [
            (to_a, 1, 1000),
            (to_a, 2, 1000),
            (to_a, 3, 400),
            (to_b, 4, 300),
            (to_a, 5, 200),
        ] {
            outbox.push(to, &datagram(tag, len));
        }
        let messages = [
            Message {
                start: 0,
                end: 3,
                segment: 1000,
            },
            Message {
                start: 3,
                end: 4,
                segment: 0,
            },
            Message {
                start: 4,
                end: 5,
                segment: 0,
            },
        ];
        let gso = quinn_udp::UdpSocketState::new((&tx).into())
            .unwrap()
            .max_gso_segments()
            > 1;
        let sent = sendmmsg_messages(tx.as_raw_fd(), &outbox, &messages);
        if !gso {
            return; // no UDP GSO on this kernel: the mux sends one datagram per message
        }
        assert_eq!(sent.unwrap(), 3);
        let read = |rx: &std::net::UdpSocket, n: usize| -> Vec<(u8, usize)> {
            rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 2048];
            (0..n)
                .map(|_| {
                    let len = rx.recv(&mut buf).unwrap();
                    assert!(
                        buf[..len].iter().all(|&x| x == buf[0]),
                        "one datagram intact"
                    );
                    (buf[0], len)
                })
                .collect()
        };
        assert_eq!(read(&a, 4), vec![(1, 1000), (2, 1000), (3, 400), (5, 200)]);
        assert_eq!(read(&b, 1), vec![(4, 300)]);
    }
}
