"""How SSH reaches the VM: the stack setting `sshVia` and the facts each way depends on.

`direct`: the VM's external address from the admin ranges (`sshSourceRanges`).
`iap`: Identity-Aware Proxy's TCP forwarding. The client (`gcloud compute start-iap-tunnel`)
authenticates to Google, and IAP opens the TCP connection to the VM from its own range; the
firewall admits SSH from that range only, so no address of the client (a CI runner's is unknown)
is ever listed.
"""

from __future__ import annotations

SSH_VIA_DIRECT = "direct"
SSH_VIA_IAP = "iap"
SSH_VIA_MODES = (SSH_VIA_DIRECT, SSH_VIA_IAP)

# The source range of every connection IAP's TCP forwarding opens to a VM ("Using IAP for TCP
# forwarding", cloud.google.com/iap/docs/using-tcp-forwarding: "This range contains all IP
# addresses that IAP uses for TCP forwarding"). The VM's interface is IPv4 only, so the page's
# IPv6 range is not needed.
IAP_TCP_FORWARDING_RANGE = "35.235.240.0/20"
