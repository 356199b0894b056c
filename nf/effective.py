"""The effective config: what the gateway must run, once templates are resolved.

:func:`nf.templates.resolve` / :func:`nf.templates.update` build it from the validated config;
``southbound/`` reads it (``convert.conn_for``/``shared_for``, ``charon_conf.render_conf``). This
module is the one description of its shape: immutable values (frozen dataclasses, tuples,
read-only mappings) whose fields follow the YANG model ``yang/ipsec-nf.yang`` (a leaf ``foo-bar``
is the field ``foo_bar``). A field that is None is a leaf that is not set; the model's defaults
are already filled in by libyang, so None is rare past the templates.

Values are hashable and compare by value (except :class:`EffectiveConfig`, whose maps are
read-only views), so a consumer can tell a changed VPN or key with ``==``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_frozen = dataclass(frozen=True, slots=True, kw_only=True)


@_frozen
class TrafficSelector:
    """``local-ts`` / ``remote-ts`` of a security policy.

    ``subnet`` holds prefixes, addresses and ``FIRST-LAST`` ranges (none = the side's own
    address, charon's ``dynamic``); ``protocol`` is a number or a name of the model's
    ``ip-protocol`` enumeration, ``port`` a number or a ``FIRST-LAST`` range (None = any)."""

    subnet: tuple[str, ...] = ()
    protocol: int | str | None = None
    port: int | str | None = None


@_frozen
class SecurityPolicy:
    """One ``security-policy`` of a VPN (a CHILD SA); a disabled one is not in its VPN."""

    name: str
    local_ts: TrafficSelector = TrafficSelector()
    remote_ts: TrafficSelector = TrafficSelector()
    mode: str = "tunnel"
    action: str = "esp"
    priority: int = 0
    # route-based: the svti-id (xfrm if_id) of the SVTI interface of the inbound / outbound
    # SAs and policies (None: policy-based)
    svti_id_in: int | None = None
    svti_id_out: int | None = None

    @property
    def route_based(self) -> bool:
        """Bound to an SVTI interface (either way): selectors default to everything."""
        return self.svti_id_in is not None or self.svti_id_out is not None


@_frozen
class IkeProposal:
    """One ``ike-proposal`` entry; the algorithm leaf-lists keep the user's order."""

    id: int
    enc_alg: tuple[str, ...] = ()
    auth_alg: tuple[str, ...] = ()
    prf_alg: tuple[str, ...] = ()
    aead_alg: tuple[str, ...] = ()
    dh_group: tuple[str, ...] = ()


@_frozen
class EspProposal:
    """One ``esp-proposal`` entry."""

    id: int
    enc_alg: tuple[str, ...] = ()
    auth_alg: tuple[str, ...] = ()
    aead_alg: tuple[str, ...] = ()
    dh_group: tuple[str, ...] = ()
    esn: tuple[bool, ...] = (False,)


@_frozen
class AhProposal:
    """One ``ah-proposal`` entry."""

    id: int
    auth_alg: tuple[str, ...] = ()
    dh_group: tuple[str, ...] = ()
    esn: tuple[bool, ...] = (False,)


@_frozen
class IkePolicy:
    """The effective IKE SA parameters of a VPN (``ike-policy-params``)."""

    ike_proposals: tuple[IkeProposal, ...] = ()
    local_auth_method: str | None = None
    remote_auth_method: str | None = None
    version: int | None = None
    keying_tries: int | None = None
    unique_sa: str | None = None
    reauth_time: str | None = None
    rekey_time: str | None = None
    dpd_delay: str | None = None
    aggressive: bool | None = None
    udp_encap: bool | None = None
    mobike: bool | None = None
    fragmentation: str | None = None
    dpd_timeout: str | None = None
    over_time: str | None = None
    rand_time: str | None = None
    send_initial_contact: bool | None = None


@_frozen
class IpsecPolicy:
    """The effective CHILD SA parameters of a VPN (``ipsec-policy-params``)."""

    esp_proposals: tuple[EspProposal, ...] = ()
    ah_proposals: tuple[AhProposal, ...] = ()
    start_action: str | None = None
    close_action: str | None = None
    dpd_action: str | None = None
    replay_window: int | None = None
    rekey_time: str | None = None
    rekey_bytes: int | None = None
    rekey_packets: int | None = None
    encap_copy_dscp: bool | None = None
    decap_copy_dscp: bool | None = None
    encap_copy_df: bool | None = None
    life_time: str | None = None
    rand_time: str | None = None
    life_bytes: int | None = None
    rand_bytes: int | None = None
    life_packets: int | None = None
    rand_packets: int | None = None


@_frozen
class Vpn:
    """One ``vpn``: its own leaves and its templates' parameters overridden by its own.

    ``description`` and ``disabled`` are not here: a disabled VPN is not in the effective
    config at all (nothing of it is loaded), and a description is never carried."""

    name: str
    ike_template: str | None = None
    ipsec_template: str | None = None
    local_address: str | None = None
    remote_address: str | None = None
    remote_port: int | None = None
    passive: bool = False
    local_id: str | None = None
    remote_id: str | None = None
    ike: IkePolicy = IkePolicy()
    ipsec: IpsecPolicy = IpsecPolicy()
    security_policies: tuple[SecurityPolicy, ...] = ()
    # remote access: pools by name, EAP identities, certificates and authorities by name, with
    # their PEM (resolved from the lists, so a changed certificate changes the VPN too)
    vip_pools: tuple[str, ...] = ()
    local_eap_id: str | None = None
    remote_eap_id: str | None = None
    certificates: tuple[str, ...] = ()
    remote_ca_certificates: tuple[str, ...] = ()
    certificate_pem: tuple[str, ...] = field(default=(), repr=False)
    remote_ca_pem: tuple[str, ...] = field(default=(), repr=False)
    vip_pool_addresses: tuple[tuple[str, ...], ...] = field(default=(), repr=False)


@_frozen
class Svti:
    """One ``/ike/svti`` interface: a Linux xfrm interface whose if_id is ``svti_id``."""

    name: str
    svti_id: int
    link_interface: str | None = None
    mtu: int | None = None
    ipv4_address: tuple[str, ...] = ()
    ipv6_address: tuple[str, ...] = ()


@_frozen
class PreSharedKey:
    """One ``pre-shared-key``. ``secret`` (as configured: text, ``0x`` hex or ``0s`` base64)
    never shows in repr/str."""

    name: str
    ids: tuple[str, ...] = ()
    secret: str = field(repr=False)


@_frozen
class Pool:
    """One ``pool``: ``addresses`` (prefixes, addresses, ranges) and the attributes pushed."""

    name: str
    addresses: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    nbns: tuple[str, ...] = ()
    dhcp: tuple[str, ...] = ()


@_frozen
class Certificate:
    """One ``certificate``: PEM certificate and private key (never in repr/str). A
    ``ca_issued`` entry names a certificate of the gateway's CA: its PEM and key are filled
    in from the CA's store (tools/ca_refs.py), or ``problem`` says why they cannot be."""

    name: str
    certificate: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)
    ca_issued: str | None = None
    problem: str | None = None


@_frozen
class CertificateAuthority:
    """One ``certificate-authority``: PEM certificate, optional PEM CRL, URIs. ``own_ca``:
    the gateway's CA, whose certificate is filled in from its store (tools/ca_refs.py)."""

    name: str
    certificate: str = field(default="", repr=False)
    own_ca: bool = False
    crl: str | None = field(default=None, repr=False)
    crl_uris: tuple[str, ...] = ()
    ocsp_uris: tuple[str, ...] = ()


@_frozen
class EapKey:
    """One ``eap-key``: EAP identities and the secret (never in repr/str)."""

    name: str
    ids: tuple[str, ...] = ()
    secret: str = field(repr=False)


@_frozen
class RadiusServer:
    """One ``eap-radius/server``; ``secret`` never shows in repr/str."""

    name: str
    address: str
    secret: str = field(repr=False)
    auth_port: int | None = None
    acct_port: int | None = None
    preference: int = 0


@_frozen
class EapRadius:
    """``/ike/eap-radius``: charon's eap-radius plugin settings (no server: not configured)."""

    nas_identifier: str | None = None
    auth_port: int | None = None
    acct_port: int | None = None
    accounting: bool | None = None
    sockets: int | None = None
    retransmit_tries: int | None = None
    retransmit_timeout: float | None = None
    retransmit_base: float | None = None
    servers: tuple[RadiusServer, ...] = ()


@_frozen
class DosProtection:
    """``global-options/dos-protection``. ``cookie_threshold`` is a number or ``"always"``."""

    cookie_threshold: int | str | None = None
    cookie_threshold_ip: int | None = None
    block_threshold: int | None = None
    init_limit_half_open: int | None = None


@_frozen
class SpHash:
    """``global-options/sp-hash-ipv4`` or ``sp-hash-ipv6``: minimum prefix lengths of hashed
    security policies (kernel-netlink only)."""

    local: int | None = None
    remote: int | None = None


@_frozen
class LogLevels:
    """``logging/daemon`` or ``logging/authpriv``: the highest level (0..4, or ``"disable"``)
    of the messages sent to that syslog facility, by default and per subsystem (None = the
    facility's default)."""

    default: int | str | None = None
    asn1: int | str | None = None
    child: int | str | None = None
    config: int | str | None = None
    daemon: int | str | None = None
    encoding: int | str | None = None
    ike: int | str | None = None
    ipsec: int | str | None = None
    job: int | str | None = None
    kernel: int | str | None = None
    manager: int | str | None = None
    network: int | str | None = None


@_frozen
class Logging:
    """``/ike/logging``: what the daemon sends to the syslog facilities daemon and authpriv."""

    daemon: LogLevels = LogLevels()
    authpriv: LogLevels = LogLevels()


@_frozen
class GlobalOptions:
    """The effective global settings of the IKE daemon: the leaves of ``/ike/global-options``,
    and ``logging`` from ``/ike/logging`` (applied by a settings reload or a restart, see
    ``southbound.charon_conf.apply_method``)."""

    retransmit_tries: int | None = None
    retransmit_timeout: float | None = None
    retransmit_base: float | None = None
    acquire_timeout: int | None = None
    threads: int | None = None
    dos_protection: DosProtection = DosProtection()
    sa_table_size: int | None = None
    sa_table_segments: int | None = None
    sp_hash_ipv4: SpHash = SpHash()
    sp_hash_ipv6: SpHash = SpHash()
    install_routes: bool | None = None
    routing_table: int | None = None
    routing_table_prio: int | None = None
    delete_rekeyed: bool | None = None
    delete_rekeyed_delay: int | None = None
    make_before_break: bool | None = None
    mobike_prefer_best_path: bool | None = None
    ike_port: int | None = None
    ike_nat_port: int | None = None
    # not a leaf of global-options: /ike/logging, a setting of the same daemon, taken the same
    # way (a settings reload or a restart)
    logging: Logging = Logging()
    # not a leaf of global-options either: /ike/eap-radius, the eap-radius plugin's settings
    eap_radius: EapRadius = EapRadius()


def _read_only(m: Mapping[str, Any]) -> Mapping[str, Any]:
    # A MappingProxyType is taken as is (its maker owns the dict behind it); anything else is
    # copied, so a caller keeping the dict it passed cannot change the value afterwards.
    return m if isinstance(m, MappingProxyType) else MappingProxyType(dict(m))


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class EffectiveConfig:
    """The whole effective config.

    ``vpns`` maps a VPN name to its :class:`Vpn`, ``psks`` a key name to its
    :class:`PreSharedKey`; both are read-only (plain mappings given to the constructor are
    copied into one). With ``enabled`` false nothing should be loaded into the daemon.
    """

    enabled: bool = True
    global_options: GlobalOptions = GlobalOptions()
    vpns: Mapping[str, Vpn] = field(default_factory=lambda: MappingProxyType({}))
    psks: Mapping[str, PreSharedKey] = field(default_factory=lambda: MappingProxyType({}))
    # remote access (pool, certificate, certificate-authority, eap-key lists)
    pools: Mapping[str, Pool] = field(default_factory=lambda: MappingProxyType({}))
    certificates: Mapping[str, Certificate] = field(default_factory=lambda: MappingProxyType({}))
    authorities: Mapping[str, CertificateAuthority] = field(
        default_factory=lambda: MappingProxyType({}))
    eap_keys: Mapping[str, EapKey] = field(default_factory=lambda: MappingProxyType({}))
    # route-based VPNs: the SVTI interfaces (xfrm interfaces) by name
    svtis: Mapping[str, Svti] = field(default_factory=lambda: MappingProxyType({}))
    # what the RFC 9061 models ask that is not carried out (nf/i2nsf_ike.py: refused at
    # validate, edit and commit; never loaded)
    refusals: tuple[Any, ...] = ()
    # RFC 9061's IKE-less case: the SAs and policies to install in the kernel
    # (nf.effective_ikeless.IkelessConfig; None: none configured), for the XFRM backend
    ikeless: Any = None

    def __post_init__(self) -> None:
        for name in ("vpns", "psks", "pools", "certificates", "authorities", "eap_keys",
                     "svtis"):
            object.__setattr__(self, name, _read_only(getattr(self, name)))

    @classmethod
    def empty(cls) -> EffectiveConfig:
        """Nothing configured (what an empty config resolves to)."""
        return cls()

    def __repr__(self) -> str:
        return (f"EffectiveConfig(enabled={self.enabled}, global_options={self.global_options!r}, "
                f"vpns={len(self.vpns)}, psks={len(self.psks)})")

    def __copy__(self) -> EffectiveConfig:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> EffectiveConfig:
        return self  # immutable: a copy is the value itself
