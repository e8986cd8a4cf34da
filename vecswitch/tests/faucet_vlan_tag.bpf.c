/* A tagged host where the kernel has no 802.1Q (CONFIG_VLAN_8021Q off, as on the CI's kernel):
 * tc clsact programs (cls_bpf, direct action) on the host's interface push VLAN VID on every
 * frame it sends and pop it from what it receives, dropping frames of other VLANs. Built by
 * vecswitch/tests/faucet.rs with `clang -O2 -target bpf -DVID=N`; no headers needed. */
typedef unsigned short u16;
typedef unsigned int u32;

/* The first fields of the kernel's struct __sk_buff (include/uapi/linux/bpf.h). */
struct __sk_buff {
    u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto;
};

/* Helper ids 18 and 19 (bpf_skb_vlan_push, bpf_skb_vlan_pop). */
static long (*skb_vlan_push)(struct __sk_buff *skb, u16 proto, u16 tci) = (void *)18;
static long (*skb_vlan_pop)(struct __sk_buff *skb) = (void *)19;

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

__attribute__((section("egress"), used)) int tag(struct __sk_buff *skb)
{
    if (skb_vlan_push(skb, __builtin_bswap16(0x8100), VID))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

/* The kernel moves a received tag into the skb's metadata before tc ingress runs. */
__attribute__((section("ingress"), used)) int untag(struct __sk_buff *skb)
{
    if (!skb->vlan_present || (skb->vlan_tci & 0x0fff) != VID)
        return TC_ACT_SHOT;
    skb_vlan_pop(skb);
    return TC_ACT_OK;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
