/* What the Rust side binds: the EAL, ethdev, mbuf and mempool APIs, and the shim below that
 * exports DPDK's static-inline fast-path functions as real symbols. */
#include <rte_config.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_dev.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

uint16_t vs_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
                         uint16_t nb_pkts);
uint16_t vs_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
                         uint16_t nb_pkts);
struct rte_mbuf *vs_pktmbuf_alloc(struct rte_mempool *mp);
int vs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void vs_pktmbuf_free(struct rte_mbuf *m);
void vs_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);
void *vs_pktmbuf_data(struct rte_mbuf *m);
uint16_t vs_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t vs_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t vs_pktmbuf_nb_segs(const struct rte_mbuf *m);
uint16_t vs_pktmbuf_tailroom(const struct rte_mbuf *m);
char *vs_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
unsigned int vs_lcore_id(void);
int vs_errno(void);
