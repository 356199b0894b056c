# gNMI with pygnmi: read a VPN and the state, change running with Set, and watch the change
# on a STREAM subscription. The server runs with --gnmi 127.0.0.1:9339 --gnmi-insecure
# (plaintext, loopback only; with --gnmi-cert/--gnmi-key, pass path_cert= instead).
import os

from pygnmi.client import gNMIclient

with gNMIclient(target=("127.0.0.1", 9339), username="admin",
                password=os.environ["IPSEC_NF_PASSWORD"], insecure=True) as gc:
    print(gc.capabilities()["supported_models"])  # ipsec-nf and ietf-netconf-acm
    # paths in the module's names, list keys in brackets ('*' or no key: every entry)
    print(gc.get(path=["/ike/vpn[name=siteA-siteB]/remote-address",
                       "/ike/apply-status/health"], encoding="json_ietf"))
    sub = gc.subscribe_stream(subscribe={
        "subscription": [{"path": "/ike/vpn[name=siteA-siteB]/description",
                          "mode": "on_change"},
                         {"path": "/ike/ike-sa", "mode": "on_change"}],
        "mode": "stream", "encoding": "json_ietf"})
    print(sub.get_update(timeout=10))  # the current values, then sync_response
    # one transaction on running, as edit-config + commit: validated, NACM-checked, in the
    # commit history and announced by netconf-config-change
    gc.set(update=[("/ike/vpn[name=siteA-siteB]/description", "HQ to branch (gNMI)")],
           encoding="json_ietf")
    print(sub.get_update(timeout=10))  # ON_CHANGE: the description leaf, new value
    sub.close()
    print(gc.set(delete=["/ike/vpn[name=siteA-siteB]/description"], encoding="json_ietf"))
