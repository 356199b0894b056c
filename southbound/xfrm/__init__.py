"""Our own netlink XFRM driver: the kernel's SAD and SPD, read and written over NETLINK_XFRM.

- :mod:`southbound.xfrm.types`: immutable values (selectors, lifetimes, SAs, policies, events);
- :mod:`southbound.xfrm.api`: the driver's protocol (what callers may rely on);
- :mod:`southbound.xfrm.constants`: the kernel's message types, flags and socket options;
- :mod:`southbound.xfrm.layouts`: the kernel's structures as flat field lists;
- :mod:`southbound.xfrm.packing`: those fields packed in one ``struct`` call;
- :mod:`southbound.xfrm.attributes`: the XFRMA_* attributes on pyroute2's nla classes;
- :mod:`southbound.xfrm.messages`: the messages on pyroute2's nlmsg classes;
- :mod:`southbound.xfrm.codec`: our typed values to/from those messages;
- :mod:`southbound.xfrm.fastpack`: the bulk path, NEWSA/NEWPOLICY packed without pyroute2;
- :mod:`southbound.xfrm.netlink_socket`: the NETLINK_XFRM socket and the kernel's errors as ours;
- :mod:`southbound.xfrm.exchange`: requests, ACKs, replies and dumps on that socket;
- :mod:`southbound.xfrm.netlink`: :class:`XfrmNetlink`, the driver (SAD and SPD operations);
- :mod:`southbound.xfrm.subscription`: :class:`XfrmEvents`, the kernel's events.

No ``ip xfrm`` is run: the messages are built and parsed here.
"""
