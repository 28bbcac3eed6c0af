//! A shard's viewers coming and going: added once negotiated, handed to another shard once
//! connected (`handoff`: the shard their datagrams arrive at), removed.

use super::*;

impl Engine {
    /// A negotiated viewer joins the shard.
    pub(super) fn add(&mut self, viewer: Viewer) {
        let ufrag = viewer.ufrag.clone();
        let id = viewer.id;
        let key = self.viewers.insert(viewer);
        self.by_id.insert(id, key);
        self.by_ufrag.insert(ufrag, key);
        let now = Instant::now();
        let viewer = &mut self.viewers[key];
        if let Err(e) = viewer.pc.handle_timeout(now) {
            tracing::debug!(error = %e, "viewer core timeout");
        }
        self.service(key);
    }

    /// Removes viewer `key`: its core closed, its addresses and feeds left.
    pub(super) fn remove(&mut self, key: usize) {
        let Some(mut viewer) = self.viewers.try_remove(key) else {
            return;
        };
        let _ = viewer.pc.close();
        while let Some(out) = viewer.pc.poll_write() {
            self.out.push_core(key, &out);
        }
        // What was queued for its connections is written before they close (best effort).
        let mut closed = std::mem::take(&mut self.tcp_closed);
        self.out.tcp.flush(|_, _| {}, &mut closed);
        closed.clear();
        self.tcp_closed = closed;
        for &id in &viewer.tcp_conns {
            self.out.tcp.close(id);
        }
        self.by_id.remove(&viewer.id);
        self.by_ufrag.remove(&viewer.ufrag);
        for addr in &viewer.addrs {
            if self.by_addr.get(addr) == Some(&key) {
                self.by_addr.remove(addr);
            }
        }
        for (i, leg) in viewer.legs.iter().enumerate() {
            self.leave_feed(key, i, &leg.track);
            if let Some(pending) = leg.layers.as_ref().and_then(|l| l.pending.as_ref()) {
                self.leave_feed(key, i, pending);
            }
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(viewer = viewer.id, "viewer left the mux");
        viewer.finished.cancel();
    }

    /// The shard viewer `key`, just connected over UDP, is to move to: the one its media
    /// address's datagrams arrive at, if not this one. A viewer with a TCP connection stays
    /// (its connections are this shard's).
    pub(super) fn home_elsewhere(&self, key: usize) -> Option<usize> {
        let here = self.sharing.as_ref()?.index();
        let viewer = self.viewers.get(key)?;
        let home = viewer.arrived_on?;
        (home != here
            && viewer.tcp_conns.is_empty()
            && matches!(viewer.media_to, Some(MediaTo::Udp(_))))
        .then_some(home)
    }

    /// Hands connected viewer `key` to shard `to`, which finishes its joining
    /// ([`Self::adopt`]).
    pub(super) fn hand_over(&mut self, key: usize, to: usize) {
        let Some(sharing) = self.sharing.as_ref() else {
            return;
        };
        let mailbox = sharing.mailboxes[to].clone();
        sharing.moved.inc();
        let Some(viewer) = self.viewers.try_remove(key) else {
            return;
        };
        self.by_id.remove(&viewer.id);
        self.by_ufrag.remove(&viewer.ufrag);
        for addr in &viewer.addrs {
            if self.by_addr.get(addr) == Some(&key) {
                self.by_addr.remove(addr);
            }
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(
            viewer = viewer.id,
            from = sharing.index(),
            to,
            "viewer handed to the shard its datagrams arrive at"
        );
        if let Err(refused) = mailbox.send(Command::Adopt(Box::new(viewer))) {
            // The node is shutting down: the viewer ends here.
            if let Command::Adopt(viewer) = refused.0 {
                viewer.finished.cancel();
            }
        }
    }

    /// A connected viewer another shard handed over: it joins this one, and its feeds.
    pub(super) fn adopt(&mut self, viewer: Viewer) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let (id, ufrag, addrs) = (viewer.id, viewer.ufrag.clone(), viewer.addrs.clone());
        let key = self.viewers.insert(viewer);
        self.by_id.insert(id, key);
        self.by_ufrag.insert(ufrag, key);
        for addr in addrs {
            self.by_addr.insert(addr, key);
        }
        if self.viewers[key].removing.is_cancelled() {
            // Its removal went to every shard while it was on its way here.
            self.remove(key);
            return;
        }
        self.on_connected(key);
    }
}
