//! The OpenFlow wire codec (`ofwire`: 1.3, and 1.0 for messages of version 1) over any bytes.
//!
//! The first byte sets how many bytes at a time the rest is pushed into a `Framer` (1 to
//! 256), as a TCP connection would deliver them; every whole message is decoded with
//! `Message::decode`. A message that decodes encodes again (or is refused with an
//! `OfpError`, never a panic), and what it encodes to decodes back to the same message, with
//! the same header; a FLOW_MOD converts to vecswitch's `FlowMod` or is refused, and one that
//! converts converts back; a PACKET_OUT's actions convert or are refused. A framing error
//! ends the stream (the connection would be closed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ofwire::header::Frame;
use ofwire::msg::flow::FlowModMsg;
use ofwire::{Framer, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first) + 1;
    let mut framer = Framer::default();
    for piece in rest.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next_message() {
                Ok(Frame::NeedMore) => break,
                Err(_) => return,
                Ok(Frame::Message(h, body)) => check(&h, &body),
            }
        }
    }
});

fn check(h: &ofwire::Header, body: &[u8]) {
    let Ok(msg) = Message::decode(h, body) else {
        return;
    };
    if let Ok(bytes) = msg.encode(h.version, h.xid) {
        let again = Message::decode_bytes(&bytes);
        assert_eq!(again.as_ref().map(|(_, m)| m), Ok(&msg), "{bytes:02x?}");
    }
    match &msg {
        Message::FlowMod(fm) => {
            if let Ok(ours) = fm.to_flow_mod() {
                let _ = FlowModMsg::from_flow_mod(&ours).map(|m| Message::FlowMod(m).encode(4, 0));
            }
        }
        Message::PacketOut(po) => {
            let _ = po.vecswitch_actions();
        }
        _ => {}
    }
}
