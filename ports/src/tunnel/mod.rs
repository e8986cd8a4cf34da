//! Tunnel ports (`type=vxlan`, `type=geneve`): a port of a bridge with no queues of its own.
//! Its packets are those the bridge's tunnel nodes decapsulate (they enter with the port's
//! OpenFlow number as `in_port`) and encapsulate (an output to the port); this folder holds
//! only the port's options.

pub mod options;
