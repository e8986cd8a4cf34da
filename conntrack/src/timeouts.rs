//! Timeout policies, after Open vSwitch's `lib/conntrack-tp.c`. A policy holds the eleven
//! values of OVS's `ct_dpif_timeout_policy` in seconds, with the userspace datapath's
//! defaults. The trackers name the *internal* timeouts (`CT_TM_*`); [`Timeout`] maps each to
//! its policy attribute exactly as `tm_to_ct_dpif_tp` does (note the shift in the TCP names:
//! OVS's "closing" uses `tcp_fin_wait`, "fin wait" uses `tcp_time_wait`).

/// Nanoseconds in a second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// The timeout values of a policy, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutPolicy {
    pub tcp_syn_sent: u32,
    pub tcp_syn_recv: u32,
    pub tcp_established: u32,
    pub tcp_fin_wait: u32,
    pub tcp_time_wait: u32,
    pub tcp_close: u32,
    pub udp_first: u32,
    pub udp_single: u32,
    pub udp_multiple: u32,
    pub icmp_first: u32,
    pub icmp_reply: u32,
}

impl Default for TimeoutPolicy {
    /// OVS's `ct_dpif_netdev_tp_def`.
    fn default() -> Self {
        TimeoutPolicy {
            tcp_syn_sent: 30,
            tcp_syn_recv: 30,
            tcp_established: 24 * 60 * 60,
            tcp_fin_wait: 15 * 60,
            tcp_time_wait: 45,
            tcp_close: 30,
            udp_first: 60,
            udp_single: 60,
            udp_multiple: 30,
            icmp_first: 60,
            icmp_reply: 30,
        }
    }
}

/// The timeouts the trackers ask for (OVS `enum ct_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    TcpFirstPacket,
    TcpOpening,
    TcpEstablished,
    TcpClosing,
    TcpFinWait,
    TcpClosed,
    OtherFirst,
    OtherMultiple,
    OtherBidir,
    IcmpFirst,
    IcmpReply,
}

impl TimeoutPolicy {
    /// The attribute names (OVS's timeout policy keys) with their values.
    pub fn fields(&self) -> [(&'static str, u32); 11] {
        [
            ("tcp_syn_sent", self.tcp_syn_sent),
            ("tcp_syn_recv", self.tcp_syn_recv),
            ("tcp_established", self.tcp_established),
            ("tcp_fin_wait", self.tcp_fin_wait),
            ("tcp_time_wait", self.tcp_time_wait),
            ("tcp_close", self.tcp_close),
            ("udp_first", self.udp_first),
            ("udp_single", self.udp_single),
            ("udp_multiple", self.udp_multiple),
            ("icmp_first", self.icmp_first),
            ("icmp_reply", self.icmp_reply),
        ]
    }

    /// Sets the attribute `name` (one of [`TimeoutPolicy::fields`]) to `seconds`; `false`
    /// for an unknown name.
    pub fn set(&mut self, name: &str, seconds: u32) -> bool {
        let f = match name {
            "tcp_syn_sent" => &mut self.tcp_syn_sent,
            "tcp_syn_recv" => &mut self.tcp_syn_recv,
            "tcp_established" => &mut self.tcp_established,
            "tcp_fin_wait" => &mut self.tcp_fin_wait,
            "tcp_time_wait" => &mut self.tcp_time_wait,
            "tcp_close" => &mut self.tcp_close,
            "udp_first" => &mut self.udp_first,
            "udp_single" => &mut self.udp_single,
            "udp_multiple" => &mut self.udp_multiple,
            "icmp_first" => &mut self.icmp_first,
            "icmp_reply" => &mut self.icmp_reply,
            _ => return false,
        };
        *f = seconds;
        true
    }

    /// Seconds of `timeout` under this policy (OVS `tm_to_ct_dpif_tp`).
    pub fn seconds(&self, timeout: Timeout) -> u32 {
        match timeout {
            Timeout::TcpFirstPacket => self.tcp_syn_sent,
            Timeout::TcpOpening => self.tcp_syn_recv,
            Timeout::TcpEstablished => self.tcp_established,
            Timeout::TcpClosing => self.tcp_fin_wait,
            Timeout::TcpFinWait => self.tcp_time_wait,
            Timeout::TcpClosed => self.tcp_close,
            Timeout::OtherFirst => self.udp_first,
            Timeout::OtherMultiple => self.udp_single,
            Timeout::OtherBidir => self.udp_multiple,
            Timeout::IcmpFirst => self.icmp_first,
            Timeout::IcmpReply => self.icmp_reply,
        }
    }

    /// The expiry time of `timeout` started at `now_ns`.
    pub fn expiry(&self, timeout: Timeout, now_ns: u64) -> u64 {
        now_ns.saturating_add(u64::from(self.seconds(timeout)) * NS_PER_SEC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ovs_userspace_ones() {
        let p = TimeoutPolicy::default();
        assert_eq!(p.seconds(Timeout::TcpEstablished), 86_400);
        assert_eq!(p.seconds(Timeout::TcpClosing), 900);
        assert_eq!(p.seconds(Timeout::TcpFinWait), 45);
        assert_eq!(p.seconds(Timeout::OtherBidir), 30);
        assert_eq!(p.expiry(Timeout::IcmpFirst, 5), 5 + 60 * NS_PER_SEC);
        assert_eq!(p.expiry(Timeout::IcmpFirst, u64::MAX), u64::MAX);
    }
}
