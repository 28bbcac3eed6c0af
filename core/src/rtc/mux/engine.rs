//! A mux shard's engine: the task that owns its viewers' cores and its socket, and works in
//! batches (media in, datagrams out, input, timers).

use super::sendmmsg::{Message, sendmmsg_messages};
use super::*;
use crate::media::bwe::ProbePart;

mod feedback;
mod gate;
mod handoff;
mod layers;
mod members;
mod probe;
mod repair;
mod tcp_io;
pub(super) use gate::{VideoGate, give_gates};
pub(super) use handoff::Sharing;
pub(super) use layers::{LegLayers, give_layers};
use probe::ProbeAim;
pub(super) use probe::{Probing, Rtx};
use repair::{keep_asking, report, resend, twcc_ext, wire_size};
pub(super) use tcp_io::TcpInputs;

pub(super) struct Engine {
    /// Non-blocking, registered with the reactor for reading only.
    socket: AsyncFd<std::net::UdpSocket>,
    /// The local address the cores are told datagrams arrive on: their host candidate's.
    local: SocketAddr,
    /// The local address the cores are told TCP frames arrive on: their TCP candidate's.
    tcp_local: Option<SocketAddr>,
    viewers: Slab<Viewer>,
    /// The shard's viewer count, shared with [`Mux::subscribe`].
    count: Arc<AtomicUsize>,
    by_id: HashMap<u64, usize>,
    by_ufrag: HashMap<String, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    /// Feed id (the subscriber id its packets carry) -> feed.
    feeds: HashMap<u64, Feed>,
    /// Room track (by address) -> feed id.
    feed_of_track: HashMap<usize, u64>,
    media_tx: mpsc::Sender<Outgoing>,
    out: Out,
    /// Scratch for [`Engine::flush`]: TCP connections that failed.
    tcp_closed: Vec<u64>,
    recv_buf: Vec<u8>,
    due: Vec<usize>,
    catching: Vec<usize>,
    /// Scratch for [`Engine::flush`]: the outbox as messages.
    messages: Vec<Message>,
    /// The datagrams one GSO send may carry (1: the kernel cannot segment).
    gso_segments: usize,
    /// Scratch for [`Engine::forward`]: the batch's feeds, and one feed's legs.
    batch_feeds: Vec<u64>,
    /// Scratch for [`Engine::forward`]: the RTP padding each packet of the batch gets.
    pads: Vec<u8>,
    /// Scratch for [`frame_pads`]: one feed's packets in the batch.
    feed_packets: Vec<usize>,
    legs: Vec<(usize, usize)>,
    /// Scratch for [`Engine::forward`]: legs that switched simulcast layers in the batch.
    switched: Vec<layers::Switched>,
    send_errors: u64,
    send_errors_metric: prometheus_client::metrics::counter::Counter,
    /// Its part in sharing the port with other shards, if it does.
    sharing: Option<handoff::Sharing>,
}

impl Engine {
    /// An engine for `socket`, whose viewers' candidates carry `local`; `count` is the shard's
    /// viewer count, `media_tx` the sending end of its media queue.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        socket: AsyncFd<std::net::UdpSocket>,
        local: SocketAddr,
        tcp_local: Option<SocketAddr>,
        count: Arc<AtomicUsize>,
        media_tx: mpsc::Sender<Outgoing>,
        tcp: TcpConns,
        gso_segments: usize,
        send_errors_metric: prometheus_client::metrics::counter::Counter,
        sharing: Option<handoff::Sharing>,
    ) -> Self {
        Self {
            socket,
            local,
            tcp_local,
            viewers: Slab::new(),
            count,
            by_id: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            feeds: HashMap::new(),
            feed_of_track: HashMap::new(),
            media_tx,
            out: Out {
                udp: Outbox::with_capacity(4 * SEND_BATCH, 4 * SEND_BATCH * 1500),
                tcp,
            },
            tcp_closed: Vec::new(),
            recv_buf: vec![0; 2048],
            due: Vec::new(),
            catching: Vec::new(),
            messages: Vec::with_capacity(4 * SEND_BATCH),
            gso_segments,
            batch_feeds: Vec::new(),
            pads: Vec::new(),
            feed_packets: Vec::new(),
            legs: Vec::new(),
            switched: Vec::new(),
            send_errors: 0,
            send_errors_metric,
            sharing,
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut media: mpsc::Receiver<Outgoing>,
        mut tcp: TcpInputs,
        shutdown: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ticks = 0u32;
        loop {
            // Biased: control before media, so timers and input are never starved by a busy
            // stream.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                command = commands.recv() => match command {
                    Some(Command::Add(viewer)) => self.add(*viewer),
                    Some(Command::Adopt(viewer)) => self.adopt(*viewer),
                    Some(Command::Datagrams(from, datagrams)) => {
                        for (addr, data) in &datagrams {
                            // Never on again: the shard that read it offered it to all.
                            self.deliver(from, *addr, data);
                        }
                    }
                    Some(Command::Remove(id)) => {
                        if let Some(&key) = self.by_id.get(&id) {
                            self.remove(key);
                        }
                    }
                    None => break,
                },
                Some(accepted) = tcp.accepted.recv() => self.tcp_accept(accepted),
                Some(input) = tcp.input.recv() => self.tcp_receive(input),
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    self.timers(ticks.is_multiple_of(FULL_SWEEP_TICKS));
                }
                ready = self.socket.readable() => {
                    // The guard is dropped without clearing readiness: `receive` clears it when
                    // the socket runs dry.
                    let ready = ready.is_ok();
                    if ready {
                        self.receive();
                    }
                }
                n = media.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    rest_of_frame(&self.feeds, &mut media, &mut batch).await;
                    self.forward(&mut batch).await;
                }
            }
            self.flush().await;
        }
        let keys: Vec<usize> = self.viewers.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.remove(key);
        }
        self.flush().await;
    }

    /// Drains what a core has after it was given input: datagrams to send, state changes,
    /// RTCP for us (keyframe requests); then removes it if it is gone.
    fn service(&mut self, key: usize) {
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        drain_writes(viewer, key, &mut self.out, &mut self.by_addr);
        let mut connected = false;
        let mut events = false;
        while let Some(event) = viewer.pc.poll_event() {
            events = true;
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                tracing::debug!(viewer = viewer.id, %state, "viewer connection state");
                match state {
                    RTCPeerConnectionState::Connected => connected = true,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        viewer.gone = true;
                    }
                    _ => {}
                }
            }
        }
        while let Some(message) = viewer.pc.poll_read() {
            // Only keyframe requests, NACKs and congestion control feedback reach us
            // (`pc::KeyframeRequestForwarder`), and only until the mux reads the viewer's SRTCP
            // itself.
            if let RTCMessage::RtcpPacket(track_id, packets) = message.message {
                feedback::feedback(
                    viewer,
                    &packets,
                    Some(&track_id),
                    &self.feeds,
                    &self.feed_of_track,
                    &mut self.out,
                );
            }
        }
        if connected && viewer.protector.is_none() {
            // DTLS is done, so the core has derived its SRTP keys.
            match viewer
                .tap
                .take_keys()
                .and_then(|(sending, receiving)| Ok((Protector::new(&sending)?, receiving)))
            {
                Ok((p, receiving)) => {
                    viewer.protector = Some(p);
                    viewer.srtcp = feedback::srtcp_context(receiving, viewer.id);
                    viewer.reported_loss = viewer.legs.iter().map(|l| (l.ssrc, 0)).collect();
                }
                Err(e) => {
                    tracing::warn!(viewer = viewer.id, error = %e, "viewer's SRTP keys not found; ending it");
                    viewer.gone = true;
                }
            }
        }
        if events {
            // What the events set going: the DTLS client's first flight as ICE selects a pair.
            // webrtc-rs's DTLS handler queues it inside its endpoint and hands it out only on a
            // timeout, which would be the ICE agent's next one (up to 200 ms later); a timeout
            // now hands it out. After the writes above, so the STUN answer that completed ICE
            // leaves first (a client drops DTLS that comes before its own pair is selected).
            if let Err(e) = viewer.pc.handle_timeout(Instant::now()) {
                tracing::debug!(error = %e, "viewer core timeout");
            }
            drain_writes(viewer, key, &mut self.out, &mut self.by_addr);
        }
        viewer.deadline = viewer.pc.poll_timeout();
        if viewer.gone {
            self.remove(key);
        } else if connected && viewer.connected_at.is_none() {
            match self.home_elsewhere(key) {
                Some(to) => self.hand_over(key, to),
                None => self.on_connected(key),
            }
        }
    }

    /// Viewer `key` connected (here, or on the shard that handed it over): it joins its feeds
    /// and starts catching up.
    fn on_connected(&mut self, key: usize) {
        let viewer = &mut self.viewers[key];
        viewer.connected_at = Some(Instant::now());
        if let Some(to) = viewer.media_to {
            viewer.transport.set(match to {
                MediaTo::Tcp(_) => Transport::Tcp,
                MediaTo::Udp(addr) => Transport::of_udp_pair(&viewer.relays, addr),
            });
        }
        viewer.connected.cancel();
        self.attach(key);
        self.catch_up(key, Instant::now());
    }

    /// A viewer is connected: its legs join their tracks' feeds. A feed already running gives
    /// the new leg its cached keyframe at once; a new feed gets the room track's.
    fn attach(&mut self, key: usize) {
        let legs = self.viewers[key].legs.len();
        for leg in 0..legs {
            let track = self.viewers[key].legs[leg].track.clone();
            let feed_id = self.feed_for(&track, self.viewers[key].traffic.clone());
            let feed = self.feeds.get_mut(&feed_id).expect("feed just found");
            if let Some(source) = feed.source {
                let cached = feed.cache.snapshot();
                if feed.video && cached.is_empty() {
                    let track = track.clone();
                    tokio::spawn(async move { track.request_keyframe().await });
                }
                let viewer = &mut self.viewers[key];
                viewer.catch_up.extend(
                    cached
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (leg, p.clone(), source, i == 0)),
                );
            }
            feed.legs.push((key, leg));
        }
    }

    /// The mux's feed of `track`, attached now if it has none (a keyframe is then requested
    /// when the track has none cached).
    fn feed_for(&mut self, track: &Arc<RoomTrack>, traffic: Traffic) -> u64 {
        let track_key = Arc::as_ptr(track) as usize;
        if let Some(&id) = self.feed_of_track.get(&track_key) {
            return id;
        }
        let (feed, starving) = track.feed(&self.media_tx);
        if starving {
            let track = track.clone();
            tokio::spawn(async move { track.request_keyframe().await });
        }
        let id = feed.id;
        self.feeds.insert(
            id,
            Feed {
                _feed: feed,
                cache: KeyframeCache::new(KEYFRAME_CACHE_PACKETS),
                history: History::default(),
                video: Codec::from_mime(&track.codec.mime_type).needs_keyframe(),
                source: None,
                traffic,
                track: track_key,
                legs: Vec::new(),
            },
        );
        self.feed_of_track.insert(track_key, id);
        id
    }

    /// Sends the next slice of a joining viewer's catch-up.
    fn catch_up(&mut self, key: usize, now: Instant) {
        let Some(viewer) = self.viewers.get_mut(key) else {
            return;
        };
        let (mut sent, mut bytes) = (0u64, 0u64);
        for _ in 0..CATCH_UP_PER_TICK {
            let Some((leg, packet, source, keyframe)) = viewer.catch_up.pop_front() else {
                break;
            };
            if let Some(n) = send(
                viewer,
                leg,
                &packet,
                source,
                keyframe,
                0,
                now,
                &mut self.out,
            ) {
                sent += 1;
                bytes += n;
            }
        }
        viewer.traffic.packets_out.inc_by(sent);
        viewer.traffic.bytes_out.inc_by(bytes);
    }

    /// Reads what the socket holds (bounded) and hands each datagram to its viewer.
    fn receive(&mut self) {
        // Out and back: an empty `Vec` in its place allocates nothing.
        let mut buf = std::mem::take(&mut self.recv_buf);
        let now = Instant::now();
        for _ in 0..RECV_BATCH {
            let (n, from) = match self
                .socket
                .try_io(Interest::READABLE, |s| s.recv_from(&mut buf))
            {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "mux receive failed");
                    break;
                }
            };
            if !self.deliver(self.index(), from, &buf[..n])
                && let Some(sharing) = self.sharing.as_mut()
            {
                sharing.keep(from, &buf[..n], now);
            }
        }
        self.recv_buf = buf;
        if let Some(sharing) = self.sharing.as_mut() {
            sharing.hand_on();
        }
    }

    /// Hands `data`, from `from`, to the viewer it belongs to: a STUN request by its ICE
    /// username, anything else by its source address. `arrived_on`: the shard whose socket read
    /// it. False if none of the shard's viewers claims it.
    fn deliver(&mut self, arrived_on: usize, from: SocketAddr, data: &[u8]) -> bool {
        let stun = is_stun(data);
        let by_ufrag = if stun {
            stun_local_ufrag(data).and_then(|u| self.by_ufrag.get(u).copied())
        } else {
            None
        };
        let key = match by_ufrag {
            // Not routed by address yet: anyone can write a viewer's ufrag. The core
            // authenticates the request, and its answer routes the address (`route`).
            Some(key) => key,
            None => match self.by_addr.get(&from) {
                Some(&key) => key,
                None => return false,
            },
        };
        let Some(viewer) = self.viewers.get_mut(key) else {
            return false;
        };
        if viewer.media_to == Some(MediaTo::Udp(from)) {
            viewer.arrived_on = Some(arrived_on);
        }
        if !stun && self.own_rtcp(key, data) {
            return true;
        }
        let message = TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if let Some(viewer) = self.viewers.get_mut(key) {
            if let Err(e) = viewer.pc.handle_read(message) {
                tracing::trace!(error = %e, "viewer core refused a datagram");
            }
            self.service(key);
        }
        true
    }

    /// Runs the timers that are due; on a full sweep, asks every core for its next deadline.
    fn timers(&mut self, full: bool) {
        let now = Instant::now();
        self.due.clear();
        for (key, viewer) in self.viewers.iter_mut() {
            if full {
                viewer.deadline = viewer.pc.poll_timeout();
            }
            let timed_out = viewer.connected_at.is_none() && now > viewer.connect_by;
            if timed_out {
                viewer.gone = true;
            }
            let reporting = viewer.protector.is_some() && viewer.next_report <= now;
            if reporting {
                viewer.next_report = now + REPORT_INTERVAL;
                report(viewer, now);
            }
            if timed_out || reporting || viewer.deadline.is_some_and(|d| d <= now) {
                self.due.push(key);
            }
        }
        self.catching.clear();
        self.catching.extend(
            self.viewers
                .iter()
                .filter(|(_, v)| !v.catch_up.is_empty())
                .map(|(k, _)| k),
        );
        for i in 0..self.catching.len() {
            self.catch_up(self.catching[i], now);
        }
        self.catching.clear();
        self.catching.extend(
            self.viewers
                .iter()
                .filter(|(_, v)| v.next_adapt <= now)
                .map(|(k, _)| k),
        );
        for i in 0..self.catching.len() {
            self.adapt(self.catching[i], now);
        }
        self.catching.clear();
        self.catching.extend(
            self.viewers
                .iter()
                .filter(|(_, v)| v.probing.sending(now))
                .map(|(k, _)| k),
        );
        for i in 0..self.catching.len() {
            self.pad(self.catching[i], now);
        }
        for i in 0..self.due.len() {
            let key = self.due[i];
            if let Some(viewer) = self.viewers.get_mut(key) {
                if !viewer.gone
                    && let Err(e) = viewer.pc.handle_timeout(now)
                {
                    tracing::debug!(error = %e, "viewer core timeout");
                }
                self.service(key);
            }
        }
    }

    /// The per-packet path: each packet to every leg of its feed, then out in batches.
    ///
    /// Viewer by viewer rather than packet by packet: each leg takes all of the batch's packets
    /// of its feed in a row, so a viewer's core (hundreds of them, each with its own buffers)
    /// is brought into the CPU's cache once per batch, not once per packet.
    async fn forward(&mut self, batch: &mut Vec<Outgoing>) {
        let now = Instant::now();
        // The feeds' own state, in arrival order; and which feeds the batch holds.
        self.batch_feeds.clear();
        batch.retain(|out| self.feeds.contains_key(&out.subscriber));
        for out in batch.iter() {
            let feed = self.feeds.get_mut(&out.subscriber).expect("retained");
            if feed.source != Some(out.source) {
                feed.cache.clear();
                feed.history.clear();
                feed.source = Some(out.source);
            }
            // Only video is NACKed (`pc::register_nack_feedback`) or started at a keyframe.
            if feed.video {
                feed.history.push(out.packet.clone());
                feed.cache.push(&out.packet, out.keyframe);
            }
            if !self.batch_feeds.contains(&out.subscriber) {
                self.batch_feeds.push(out.subscriber);
            }
        }
        self.pads.clear();
        self.pads.resize(batch.len(), 0);
        for &feed_id in &self.batch_feeds {
            if self.feeds.get(&feed_id).is_some_and(|f| f.video) {
                frame_pads(batch, feed_id, &mut self.feed_packets, &mut self.pads);
            }
        }
        for f in 0..self.batch_feeds.len() {
            let feed_id = self.batch_feeds[f];
            let Some(feed) = self.feeds.get(&feed_id) else {
                continue;
            };
            self.legs.clear();
            self.legs.extend_from_slice(&feed.legs);
            let traffic = feed.traffic.clone();
            let feed_track = feed.track;
            let (mut sent, mut bytes) = (0u64, 0u64);
            for l in 0..self.legs.len() {
                let (key, leg) = self.legs[l];
                let viewer = &mut self.viewers[key];
                // A leg on another layer is here waiting for this one's keyframe to switch to
                // it (`engine::layers`); a leg that has left this layer, not yet its feed, skips.
                let mut switching = Arc::as_ptr(&viewer.legs[leg].track) as usize != feed_track;
                if switching && !layers::waits_for(&viewer.legs[leg], feed_track) {
                    continue;
                }
                for (i, out) in batch.iter().enumerate() {
                    if out.subscriber != feed_id {
                        continue;
                    }
                    if switching {
                        // At a live keyframe: a new feed's replay of the layer's cached group
                        // of pictures would be an old picture, and a burst of up to a whole
                        // group into a link the viewer is being moved on for.
                        if !out.keyframe || out.replay {
                            continue;
                        }
                        Self::complete_switch(viewer, key, leg, &mut self.switched);
                        switching = false;
                    }
                    // A replay (a joining viewer's new feed) is paced like any catch-up.
                    if out.replay || !viewer.catch_up.is_empty() {
                        viewer.catch_up.push_back((
                            leg,
                            out.packet.clone(),
                            out.source,
                            out.keyframe,
                        ));
                    } else {
                        let waiting = !viewer.legs[leg].forward.is_started();
                        if let Some(n) = send(
                            viewer,
                            leg,
                            &out.packet,
                            out.source,
                            out.keyframe,
                            self.pads[i],
                            now,
                            &mut self.out,
                        ) {
                            sent += 1;
                            bytes += n;
                        }
                        if waiting
                            && out.keyframe
                            && viewer.legs[leg].forward.is_started()
                            && let Some(feed) = self.feeds.get(&feed_id)
                        {
                            // The leg starts at this keyframe. If its first packet came late
                            // (resent after a NACK upstream), the rest of its group of pictures
                            // came before it and the leg skipped them: the feed's cache holds
                            // them after it. Packets the batch still has for the leg are then
                            // refused by its rewriter as already sent.
                            let cached = feed.cache.snapshot();
                            let from_here = cached.first().is_some_and(|k| {
                                k.header.sequence_number == out.packet.header.sequence_number
                            });
                            for p in cached.iter().skip(1).filter(|_| from_here) {
                                if let Some(n) =
                                    send(viewer, leg, p, out.source, false, 0, now, &mut self.out)
                                {
                                    sent += 1;
                                    bytes += n;
                                }
                            }
                        }
                    }
                }
                if self.out.udp.len() >= SEND_BATCH {
                    self.flush().await;
                }
            }
            if sent > 0 {
                traffic.packets_out.inc_by(sent);
                traffic.bytes_out.inc_by(bytes);
            }
        }
        batch.clear();
        self.leave_switched();
    }

    /// Sends the outbox, up to [`SEND_BATCH`] messages per `sendmmsg`. Consecutive datagrams
    /// to one viewer of one size (the last may be shorter: the end of a frame) are one message,
    /// a UDP GSO send, when the kernel can: forwarding viewer by viewer, a video frame's packets
    /// to a viewer are such a run. So one system call carries the frame to dozens of viewers,
    /// and the kernel reads the datagrams where they are (no copy into a GSO buffer). Messages
    /// leave in outbox order, so a viewer's datagrams stay in order. A full socket buffer waits
    /// for room once; what still does not fit is dropped (and NACKed by the viewer).
    async fn flush(&mut self) {
        self.flush_tcp();
        let outbox = &self.out.udp;
        self.messages.clear();
        let mut i = 0;
        while i < outbox.len() {
            let (to, first) = (outbox.to(i), outbox.size(i));
            let mut j = i + 1;
            while j < outbox.len()
                && j - i < self.gso_segments
                && outbox.to(j) == to
                && outbox.size(j) <= first
                && (j - i + 1) * first <= GSO_BYTES
            {
                j += 1;
                if outbox.size(j - 1) < first {
                    break;
                }
            }
            let segment = if j - i >= 2 { first as u16 } else { 0 };
            self.messages.push(Message {
                start: i,
                end: j,
                segment,
            });
            i = j;
        }
        let mut at = 0;
        let mut waited = false;
        while at < self.messages.len() {
            let result =
                sendmmsg_messages(self.socket.as_raw_fd(), &self.out.udp, &self.messages[at..]);
            match result {
                Ok(n) => at += n.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !waited => {
                    // The socket is not registered for writability (see `Shard::start`): a
                    // full send buffer is rare (loopback frees it at once, a NIC as it sends),
                    // so give it a moment instead.
                    waited = true;
                    tokio::time::sleep(SEND_BUFFER_WAIT).await;
                }
                Err(e)
                    if self.messages[at].segment != 0
                        && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) =>
                {
                    // The kernel or the route cannot segment: one datagram per message from now
                    // on, starting with what is left of this flush.
                    tracing::info!(error = %e, "UDP GSO send failed; mux sends one datagram per message from now on");
                    self.gso_segments = 1;
                    let rest: Vec<Message> = self.messages[at..]
                        .iter()
                        .flat_map(|m| {
                            (m.start..m.end).map(|k| Message {
                                start: k,
                                end: k + 1,
                                segment: 0,
                            })
                        })
                        .collect();
                    self.messages.truncate(at);
                    self.messages.extend(rest);
                }
                Err(e) => {
                    // One message the kernel refuses (an unreachable address) costs only itself.
                    self.send_error(&e);
                    at += 1;
                }
            }
        }
        self.out.udp.clear();
    }

    fn send_error(&mut self, e: &std::io::Error) {
        self.send_errors += 1;
        self.send_errors_metric.inc();
        if self.send_errors.is_power_of_two() {
            tracing::debug!(error = %e, errors = self.send_errors, "mux send failed");
        }
    }
}

/// A video frame arrives as a burst of packets, handed over one by one: when the batch
/// ends inside a frame (its last video packet lacks the marker bit), waits for the rest of
/// it, up to [`FRAME_WAIT`]. Each viewer then gets the frame as one GSO send instead of a
/// datagram or two per wake-up.
async fn rest_of_frame(
    feeds: &HashMap<u64, Feed>,
    media: &mut mpsc::Receiver<Outgoing>,
    batch: &mut Vec<Outgoing>,
) {
    let inside_frame = |batch: &[Outgoing]| {
        batch.last().is_some_and(|out| {
            !out.packet.header.marker && feeds.get(&out.subscriber).is_some_and(|f| f.video)
        })
    };
    if !inside_frame(batch) {
        return;
    }
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    while batch.len() < BATCH && inside_frame(batch) {
        match tokio::time::timeout_at(deadline, media.recv_many(batch, BATCH - batch.len())).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// The most RTP padding [`frame_pads`] gives a packet.
const MAX_PAD: usize = 32;

/// Sets `pads[i]` for the packets of video feed `feed` in `batch` so that each frame's packets
/// (a run of one timestamp) are all one size but the last: a packetizer splits a frame into
/// packets whose sizes differ by a byte or so (libwebrtc's VP8 packetizer balances them), and
/// UDP GSO needs equal segments (only the last may be shorter). Then each viewer gets the frame
/// as one GSO send instead of two or more. `scratch` holds the feed's packet indexes.
fn frame_pads(batch: &[Outgoing], feed: u64, scratch: &mut Vec<usize>, pads: &mut [u8]) {
    scratch.clear();
    scratch.extend((0..batch.len()).filter(|&i| batch[i].subscriber == feed));
    for run in scratch
        .chunk_by(|&a, &b| batch[a].packet.header.timestamp == batch[b].packet.header.timestamp)
    {
        let Some((_, rest)) = run.split_last() else {
            continue;
        };
        let target = run
            .iter()
            .map(|&i| batch[i].packet.marshal_size())
            .max()
            .unwrap_or(0);
        for &i in rest {
            let pad = target - batch[i].packet.marshal_size();
            if pad <= MAX_PAD {
                pads[i] = pad as u8;
            }
        }
    }
}

/// Sends what viewer `key`'s core has to write, and learns where it sends (`route`).
fn drain_writes(
    viewer: &mut Viewer,
    key: usize,
    out: &mut Out,
    by_addr: &mut HashMap<SocketAddr, usize>,
) {
    while let Some(message) = viewer.pc.poll_write() {
        let stun = is_stun(&message.message);
        let Some(to) = out.push_core(key, &message) else {
            continue;
        };
        if let MediaTo::Udp(addr) = to {
            route(by_addr, &mut viewer.addrs, key, addr, stun);
        }
        if !stun {
            viewer.media_to = Some(to);
        }
    }
}

/// Routes datagrams from `to` to viewer `key` (whose routed addresses are `addrs`), as its core
/// sends `to` a datagram (`stun`: a STUN message). The core sends only to addresses that have
/// authenticated to it: its ICE-lite agent answers, and checks back, an address only after a
/// valid check from it (`pc::IceRole`), and anything else goes to its selected pair. A STUN
/// message takes the address from another viewer (a port a new session reuses: this one has
/// proved it holds it); anything else only routes an address no one has. A viewer has at most
/// [`MAX_VIEWER_ADDRS`] addresses: one more is not routed (its checks still reach the core,
/// by ufrag, but nothing else from it does).
fn route(
    by_addr: &mut HashMap<SocketAddr, usize>,
    addrs: &mut Vec<SocketAddr>,
    key: usize,
    to: SocketAddr,
    stun: bool,
) {
    if by_addr.get(&to) == Some(&key) {
        return;
    }
    if addrs.len() >= MAX_VIEWER_ADDRS {
        tracing::trace!(%to, "viewer has its fill of addresses; not routed");
        return;
    }
    match by_addr.entry(to) {
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(key);
        }
        std::collections::hash_map::Entry::Occupied(mut e) if stun => {
            e.insert(key);
        }
        std::collections::hash_map::Entry::Occupied(_) => return,
    }
    addrs.push(to);
}

/// One packet to one viewer's leg: decide, rewrite, protect (with `pad` bytes of RTP padding)
/// and queue the datagram (NACKs are answered from the feed's history). Returns the payload
/// size when it went out.
#[allow(clippy::too_many_arguments)]
fn send(
    viewer: &mut Viewer,
    leg: usize,
    packet: &rtc::rtp::Packet,
    source: u32,
    keyframe: bool,
    pad: u8,
    now: Instant,
    out: &mut Out,
) -> Option<u64> {
    let l = &mut viewer.legs[leg];
    if (viewer.congested || l.video_off) && l.forward.needs_keyframe() {
        // Its TCP connection is full, or its link cannot carry the video (`engine::gate`):
        // video stops here (not after the rewriter, which would leave gaps to NACK) and starts
        // again at a keyframe once it has drained, or the gate opened.
        l.forward.pause();
        return None;
    }
    let mut packet = packet.clone();
    if !l.forward.forward(&mut packet, source, keyframe, now) {
        return None;
    }
    let to = viewer.media_to?;
    let protector = viewer.protector.as_mut()?;
    let twcc = twcc_ext(viewer.twcc_id, &viewer.bwe);
    if !out.push_with(to, |buf| {
        protector.protect_twcc_into(&packet, pad, twcc, buf)
    }) {
        return None;
    }
    viewer.bwe.sent(
        wire_size(&packet, pad, twcc.is_some()),
        now,
        ProbePart::None,
    );
    let size = packet.payload.len() as u64;
    l.stats.sent(&packet, now);
    if !viewer.first_sent {
        viewer.first_sent = true;
        viewer
            .traffic
            .join
            .observe(viewer.offered_at.elapsed().as_secs_f64());
        if let Some(at) = viewer.connected_at {
            viewer
                .traffic
                .connected_to_media
                .observe(at.elapsed().as_secs_f64());
        }
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(feed: u64, ts: u32, payload: usize) -> Outgoing {
        Outgoing {
            subscriber: feed,
            track: 0,
            keyframe: false,
            replay: false,
            source: 0,
            packet: Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    timestamp: ts,
                    ..Default::default()
                },
                payload: bytes::Bytes::from(vec![0; payload]),
            },
        }
    }

    /// A viewer's addresses are routed as its core sends to them, at most `MAX_VIEWER_ADDRS`;
    /// another viewer's address is taken by STUN (this core answered a valid check from it),
    /// not by DTLS or SRTCP.
    #[test]
    fn a_viewer_gets_the_addresses_its_core_sends_to_and_no_more_than_its_share() {
        let addr = |port: u16| SocketAddr::from(([10, 0, 0, 1], port));
        let (mut by_addr, mut mine, mut theirs) = (HashMap::new(), Vec::new(), Vec::new());
        route(&mut by_addr, &mut theirs, 2, addr(1), false);
        route(&mut by_addr, &mut mine, 1, addr(1), false);
        assert_eq!(
            by_addr[&addr(1)],
            2,
            "DTLS does not take another viewer's address"
        );
        route(&mut by_addr, &mut mine, 1, addr(1), true);
        assert_eq!(by_addr[&addr(1)], 1, "STUN does");
        route(&mut by_addr, &mut mine, 1, addr(1), true);
        assert_eq!(mine.len(), 1, "counted once");
        for port in 2..100 {
            route(&mut by_addr, &mut mine, 1, addr(port), true);
        }
        assert_eq!(mine.len(), MAX_VIEWER_ADDRS);
        let routed = by_addr.values().filter(|&&k| k == 1).count();
        assert_eq!(routed, MAX_VIEWER_ADDRS);
        assert!(!by_addr.contains_key(&addr(99)));
    }

    /// A frame split 1127, 1127, 1126, 1126 (and another feed's packet between) is padded to
    /// 1127 but for its last packet; the next frame's packets are evened out on their own; a
    /// packet far smaller than its frame's others is left as it is.
    #[test]
    fn a_frames_packets_are_padded_to_one_size_but_the_last() {
        let batch = vec![
            outgoing(1, 100, 1127),
            outgoing(1, 100, 1127),
            outgoing(2, 7, 100),
            outgoing(1, 100, 1126),
            outgoing(1, 100, 1126),
            outgoing(1, 200, 1000),
            outgoing(1, 200, 998),
            outgoing(1, 200, 500),
            outgoing(1, 200, 990),
        ];
        let (mut scratch, mut pads) = (Vec::new(), vec![0u8; batch.len()]);
        frame_pads(&batch, 1, &mut scratch, &mut pads);
        assert_eq!(pads, vec![0, 0, 0, 1, 0, 0, 2, 0, 0]);
    }
}
