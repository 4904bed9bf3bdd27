"""Pod Security Standards, checked offline on every pod template a cell would run.

The rules are those Pod Security Admission enforces (kubernetes.io/docs/concepts/security/
pod-security-standards): `baseline` forbids the known escalations (privileged containers,
host namespaces, ports and paths, added capabilities beyond the default set, unconfined
seccomp, AppArmor or SELinux changes, /proc mounts, unsafe sysctls); `restricted` also
requires pods to run as non-root, without privilege escalation, with every capability
dropped and a seccomp profile, using only ephemeral or claim volumes. The cell's namespace
is labelled to enforce the same level, so a pod refused here would be refused there.

Each violation is (field, message), the field a path inside the object. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Obj = Mapping[str, Any]
Violation = tuple[str, str]

LEVELS = ("privileged", "baseline", "restricted")
# where each workload kind keeps its pod spec, by API group
_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("", "PodTemplate"): ("template", "spec"),
    ("", "ReplicationController"): ("spec", "template", "spec"),
    **{("apps", k): ("spec", "template", "spec") for k in ("Deployment", "StatefulSet")},
    **{("apps", k): ("spec", "template", "spec") for k in ("DaemonSet", "ReplicaSet")},
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_BASELINE_CAPABILITIES = _words(
    "AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE SETFCAP SETGID"
    " SETPCAP SETUID SYS_CHROOT"
)
_SAFE_SYSCTLS = _words(
    "kernel.shm_rmid_forced net.ipv4.ip_local_port_range net.ipv4.ip_unprivileged_port_start"
    " net.ipv4.tcp_syncookies net.ipv4.ping_group_range net.ipv4.ip_local_reserved_ports"
    " net.ipv4.tcp_keepalive_time net.ipv4.tcp_fin_timeout net.ipv4.tcp_keepalive_intvl"
    " net.ipv4.tcp_keepalive_probes"
)
_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
_RESTRICTED_VOLUMES = _words(
    "configMap csi downwardAPI emptyDir ephemeral persistentVolumeClaim projected secret"
)
_CONFINED = ("RuntimeDefault", "Localhost")
_APPARMOR = "container.apparmor.security.beta.kubernetes.io/"


def pod_template(obj: Obj) -> tuple[str, Obj, Obj] | None:
    """(path, pod spec, pod metadata) of a built-in workload; None for anything else."""
    api = str(obj.get("apiVersion", ""))
    path = _TEMPLATES.get((api.rpartition("/")[0], str(obj.get("kind"))))
    if path is None:
        return None
    node: Any = obj
    for step in path[:-1]:
        node = node.get(step) if isinstance(node, Mapping) else None
    spec = node.get(path[-1]) if isinstance(node, Mapping) else None
    if not isinstance(spec, Mapping):
        return None
    metadata = obj.get("metadata") if path == ("spec",) else node.get("metadata")
    return ".".join(path), spec, metadata if isinstance(metadata, Mapping) else {}


def containers(pod: Obj, prefix: str) -> Iterator[tuple[str, Obj]]:
    """(path, container) of every container, init container and ephemeral container."""
    for field in _CONTAINERS:
        for index, container in enumerate(pod.get(field) or ()):
            if isinstance(container, Mapping):
                yield f"{prefix}.{field}[{index}]", container


def violations(obj: Obj, level: str) -> list[Violation]:
    """Where `obj`'s pod template breaks the Pod Security `level` ([] for other kinds)."""
    found = pod_template(obj)
    if found is None or level == "privileged":
        return []
    prefix, pod, metadata = found
    out = list(_baseline(prefix, pod, metadata))
    if level == "restricted":
        out += _restricted(prefix, pod)
    return [(field, f"{message} (Pod Security level {level})") for field, message in out]


def _context(obj: Obj) -> Obj:
    context = obj.get("securityContext")
    return context if isinstance(context, Mapping) else {}


def _baseline(prefix: str, pod: Obj, metadata: Obj) -> Iterator[Violation]:
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            yield f"{prefix}.{host}", "host namespaces are not allowed: expected false or unset"
    for index, volume in enumerate(pod.get("volumes") or ()):
        if isinstance(volume, Mapping) and "hostPath" in volume:
            yield f"{prefix}.volumes[{index}].hostPath", "hostPath volumes are not allowed"
    context = _context(pod)
    for index, sysctl in enumerate(context.get("sysctls") or ()):
        name = sysctl.get("name") if isinstance(sysctl, Mapping) else None
        if name not in _SAFE_SYSCTLS:
            where = f"{prefix}.securityContext.sysctls[{index}].name"
            yield where, f"sysctl {name!r} is not one of the safe sysctls"
    yield from _confinement(f"{prefix}.securityContext", context)
    annotations = (
        "metadata.annotations" if prefix == "spec" else f"{prefix[:-5]}.metadata.annotations"
    )
    for key, value in (metadata.get("annotations") or {}).items():
        if str(key).startswith(_APPARMOR) and not _apparmor_ok(str(value)):
            yield (
                f"{annotations}[{key}]",
                (
                    f"AppArmor profile {value!r} is not allowed: expected runtime/default or"
                    " localhost/<profile>"
                ),
            )
    for path, container in containers(pod, prefix):
        yield from _container_baseline(path, container)


def _container_baseline(path: str, container: Obj) -> Iterator[Violation]:
    context = _context(container)
    where = f"{path}.securityContext"
    if context.get("privileged"):
        yield f"{where}.privileged", "privileged containers are not allowed: expected false"
    added = (context.get("capabilities") or {}).get("add") or ()
    for index, capability in enumerate(added):
        if capability not in _BASELINE_CAPABILITIES:
            yield (
                f"{where}.capabilities.add[{index}]",
                f"capability {capability!r} may not be added",
            )
    if context.get("procMount") not in (None, "Default"):
        yield f"{where}.procMount", "expected Default or unset: unmasked /proc is not allowed"
    yield from _confinement(where, context)
    for index, port in enumerate(container.get("ports") or ()):
        if isinstance(port, Mapping) and port.get("hostPort"):
            yield (
                f"{path}.ports[{index}].hostPort",
                "host ports are not allowed: expected 0 or unset",
            )


def _confinement(where: str, context: Obj) -> Iterator[Violation]:
    """seccomp, SELinux, AppArmor and Windows host processes, on a pod or a container."""
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield f"{where}.seccompProfile.type", "Unconfined is not allowed"
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in _SELINUX_TYPES:
        yield f"{where}.seLinuxOptions.type", f"SELinux type {selinux['type']!r} is not allowed"
    for field in ("user", "role"):
        if selinux.get(field):
            yield f"{where}.seLinuxOptions.{field}", "a custom SELinux user or role is not allowed"
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in _CONFINED:
        yield (
            f"{where}.appArmorProfile.type",
            f"{apparmor} is not allowed: expected RuntimeDefault or Localhost",
        )
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        yield f"{where}.windowsOptions.hostProcess", "Windows host processes are not allowed"


def _apparmor_ok(value: str) -> bool:
    return value == "runtime/default" or value.startswith("localhost/")


def _restricted(prefix: str, pod: Obj) -> Iterator[Violation]:
    for index, volume in enumerate(pod.get("volumes") or ()):
        kinds = sorted(k for k in (volume if isinstance(volume, Mapping) else {}) if k != "name")
        for kind in kinds:
            if kind not in _RESTRICTED_VOLUMES and kind != "hostPath":  # hostPath: baseline's
                yield (
                    f"{prefix}.volumes[{index}].{kind}",
                    (
                        f"{kind} volumes are not allowed: expected one of"
                        f" {', '.join(sorted(_RESTRICTED_VOLUMES))}"
                    ),
                )
    context = _context(pod)
    windows = (pod.get("os") or {}).get("name") == "windows"
    every = list(containers(pod, prefix))
    for path, container in every:
        yield from _container_restricted(path, container, context, windows)
    if context.get("runAsUser") == 0:
        yield f"{prefix}.securityContext.runAsUser", "running as root (0) is not allowed"


def _container_restricted(
    path: str, container: Obj, pod_context: Obj, windows: bool
) -> Iterator[Violation]:
    context = _context(container)
    where = f"{path}.securityContext"
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    if non_root is not True:
        yield (
            f"{where}.runAsNonRoot",
            (
                "expected true (here, or in the pod's securityContext)"
                if non_root is None
                else "expected true: the container may not run as root"
            ),
        )
    if context.get("runAsUser") == 0:
        yield f"{where}.runAsUser", "running as root (0) is not allowed"
    if windows:  # the rules below do not apply to Windows pods
        return
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in (*_CONFINED, "Unconfined"):  # Unconfined: reported at baseline
        yield (
            f"{where}.seccompProfile.type",
            ("expected RuntimeDefault or Localhost (here, or in the pod's securityContext)"),
        )
    if context.get("allowPrivilegeEscalation") is not False:
        yield f"{where}.allowPrivilegeEscalation", "expected false"
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or ()):
        yield f"{where}.capabilities.drop", "expected to drop ALL"
    for index, capability in enumerate(capabilities.get("add") or ()):
        if capability != "NET_BIND_SERVICE" and capability in _BASELINE_CAPABILITIES:
            yield (
                f"{where}.capabilities.add[{index}]",
                (f"capability {capability!r} may not be added: only NET_BIND_SERVICE"),
            )
