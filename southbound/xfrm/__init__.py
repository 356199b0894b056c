"""Our own netlink XFRM driver: the kernel's SAD and SPD, read and written over NETLINK_XFRM.

- :mod:`southbound.xfrm.types`: immutable values (states, policies, events);
- :mod:`southbound.xfrm.api`: the driver's protocol (what callers may rely on);
- :mod:`southbound.xfrm.messages`: the kernel's structures on pyroute2's nlmsg/nla classes;
- :mod:`southbound.xfrm.netlink`: :class:`XfrmNetlink`, the driver on a raw NETLINK_XFRM socket.

No ``ip xfrm`` is run: the messages are built and parsed here.
"""
