"""The cell agent: one process per local cell, owning the cell's replicas.

It reads `desired.json`, starts and stops replica processes (rolling updates), probes
them, restarts failed ones with exponential back-off, keeps the cell's proxy (the service
ports, a process of its own) running and tells it the ready endpoints, and writes
`status.json`. It outlives the controller; started again after a crash, it adopts the
replicas and the proxy its predecessor left running. Neither needs it to keep serving.

    python -m cellops.backends.local.agent --cell-root DIR --host 127.a.b.c
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from cellops.backends.local import isolation, ownership, process
from cellops.backends.local.containers import ContainerRuntime
from cellops.backends.local.layout import CellPaths, cell_arguments, read_json, write_json
from cellops.backends.local.logtimes import LogClock, trim_log
from cellops.backends.local.podman import Podman
from cellops.backends.local.probes import Prober, ProbeState
from cellops.backends.local.replicas import (
    Replica,
    State,
    allocate,
    endpoints,
    load_all,
    port_map,
)
from cellops.backends.local.runtime import ProcessRuntime, Runtime, is_container
from cellops.backends.local.scaling import ReplicaView, decide
from cellops.backends.local.serving import Endpoint, Served, ServingPath

TICK = 0.2
ACK_TICK = 0.06  # the next tick after new endpoints: the proxy's answer is read soon
HEARTBEAT = 1.0
LOG_LIMIT = 1 << 20
BACKOFF_BASE, BACKOFF_CAP = 1.0, 30.0
NO_PROBE_READY = 3.0  # seconds a replica without readiness or startup probe runs before ready
BACKOFF_RESET = 60.0  # seconds ready after which a replica's back-off starts afresh
STOP_GRACE = 5.0
DRAIN_LIMIT = 2.0  # longest wait for the proxy to stop routing to a replica before SIGTERM
KEEP_REPAIRS = 50


class Agent:
    def __init__(self, paths: CellPaths, host: str) -> None:
        self.paths = paths
        self.host = host
        paths.replicas.mkdir(parents=True, exist_ok=True)
        self.replicas = {r.id: r for r in load_all(paths.replicas)}
        # records from before replicas kept their address: the one they were started on
        earlier = (read_json(paths.desired) or {}).get("address") or host
        for replica in self.replicas.values():
            replica.host = replica.host or str(earlier)
        self.probes: dict[str, dict[str, ProbeState]] = {}
        self.desired: dict[str, Any] = {"services": {}}
        self.desired_stamp: tuple[int, int] = (-1, -1)
        self.loaded = False  # a desired state was read: until then, nothing is changed
        previous = read_json(paths.status) or {}
        self.repairs: list[dict[str, Any]] = list(previous.get("repairs", []))
        self.repair_seq = int(previous.get("repairSeq", 0))
        self.last_status: dict[str, Any] = {}
        self.last_write = 0.0
        self.prober = Prober()
        self.log_clock = LogClock()  # when each part of a replica's output was written
        self.serving = ServingPath(paths, host)
        self.served = Served(running=False)
        self.user = isolation.load_user(paths.root)  # who the replicas run as (None: as us)
        self.processes = ProcessRuntime(self.user)
        self.containers = ContainerRuntime(
            Podman(paths.root.parent.parent), paths.root.name, self.user
        )
        self.stopping = False

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        write_json(
            self.paths.pidfile,
            {
                "pid": os.getpid(),
                "started": process.start_time(os.getpid()),
                "at": time.time(),
                "host": self.host,
            },
        )
        self.containers.adopt(list(self.replicas))  # found again by label; strays removed
        try:
            while not self.stopping:
                soon = False
                try:
                    soon = self.tick(time.time())
                except Exception:  # one bad tick must not leave the cell unsupervised
                    traceback.print_exc()
                time.sleep(ACK_TICK if soon else TICK)
        finally:  # the proxy keeps serving: a new agent adopts it
            self.prober.close()

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def tick(self, now: float) -> bool:
        """One look at everything; True when the proxy was handed new endpoints."""
        process.reap([r.pid for r in self.replicas.values() if r.pid] + [self.serving.pid])
        self._load_desired()
        services: dict[str, Any] = self.desired.get("services", {})
        trim_log(self.paths.proxy_log, LOG_LIMIT)
        restarted = self.serving.keep(now)
        if restarted:  # its ports were not served for a moment
            for name in sorted(n for n, s in services.items() if s["ports"]):
                self._note(name, restarted, repair=True)
        self.served = self.serving.served()
        handed = False
        if self.loaded:
            for replica in list(self.replicas.values()):
                self._watch(replica, services.get(replica.service), now)
            for name, spec in services.items():
                self._scale(name, spec, now)
            handed = self.serving.publish(self._routes(services))
        self._publish(services, now)
        return handed

    # -- desired state --------------------------------------------------------------------
    def _load_desired(self) -> None:
        try:
            stat = self.paths.desired.stat()
        except FileNotFoundError:
            return
        # every write is an atomic rename: a new inode even within one mtime tick
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp != self.desired_stamp:
            self.desired_stamp = stamp
            data = read_json(self.paths.desired)
            if data is not None and _well_formed(data):
                self.desired, self.loaded = data, True
            else:  # keep running what we have; the controller restores the file
                print(f"{time.strftime('%H:%M:%S')} ignoring a malformed desired.json", flush=True)

    # -- one replica ----------------------------------------------------------------------
    def _watch(self, replica: Replica, wanted: dict[str, Any] | None, now: float) -> None:
        """`wanted`: the service's desired entry now (None: the service is gone)."""
        self.log_clock.keep(self._log(replica), now, LOG_LIMIT)
        runtime = self._runtime(replica)
        if replica.state == State.STOPPING:
            if not runtime.alive(replica):
                runtime.finish(replica)  # what it left behind
                self._forget(replica)
            elif not replica.stop_deadline:  # draining: SIGTERM once the proxy lets go
                if not self._routed(replica) or now >= replica.drain_until:
                    runtime.signal(replica, signal.SIGTERM)
                    replica.stop_deadline = now + STOP_GRACE
                    replica.save(self.paths.replicas)
            elif now >= replica.stop_deadline:
                runtime.signal(replica, signal.SIGKILL)
            return
        if wanted is None or (replica.hash != wanted["hash"] and replica.state == State.WAITING):
            # no longer wanted, or an old version that is not even running
            self._stop_replica(replica, now)
            return
        if replica.state == State.RUNNING and not runtime.alive(replica):
            runtime.finish(replica)  # its children, its container, if any
            why = "exited" if not replica.ever_ready else "exited unexpectedly after being ready"
            self._restart_later(replica, now, why, repair=replica.ever_ready)
            return
        if replica.state == State.WAITING and now >= replica.next_start_at:
            self._launch(replica)
        if replica.state == State.RUNNING:
            self._probe(replica, now)

    def _probe(self, replica: Replica, now: float) -> None:
        states = self.probes.setdefault(replica.id, {})
        probes: dict[str, Any] = replica.spec.get("probes") or {}
        launch = self._runtime(replica).launch(replica)
        for kind in ("startup", "readiness", "liveness"):
            if probes.get(kind) and kind not in states:
                states[kind] = ProbeState(probes[kind], started_at=now)
                if replica.ready_since and kind != "liveness":
                    # adopted from a previous agent while ready: stays ready until its
                    # probes say otherwise, so an agent restart is not an outage
                    states[kind].passed = True
        startup = states.get("startup")
        active = (
            ["startup"] if startup and startup.passed is not True else ["readiness", "liveness"]
        )
        host, ports = replica.host, port_map(replica)
        for kind in active:
            if kind in states:
                self.prober.tick(states[kind], now, host, ports, launch)
        for kind in ("startup", "liveness"):
            if kind in states and states[kind].passed is False:
                self._runtime(replica).signal(replica, signal.SIGKILL)
                self._restart_later(replica, now, f"{kind} probe failed", repair=False)
                return
        if not self._ready(replica):
            replica.ready_since = 0.0
        elif not replica.ready_since:
            replica.ready_since, replica.ever_ready = now, True
            replica.save(self.paths.replicas)

    def _ready(self, replica: Replica) -> bool:
        """Running, and every startup and readiness probe of its version has passed; a
        replica with neither probe once it has run NO_PROBE_READY seconds (Kubernetes'
        minReadySeconds): one that crashes at start must never count as ready, or a
        rolling update would retire the old replica for it and empty the cell."""
        if replica.state != State.RUNNING:
            return False
        probes: dict[str, Any] = replica.spec.get("probes") or {}
        gates = [kind for kind in ("startup", "readiness") if probes.get(kind)]
        if not gates:
            return process.age(replica.started) >= NO_PROBE_READY
        states = self.probes.get(replica.id, {})
        return all(kind in states and states[kind].passed is True for kind in gates)

    def _available(self, replica: Replica, spec: dict[str, Any]) -> bool:
        """Ready, and the proxy routes to it (or cannot: its port is not served)."""
        return self._ready(replica) and all(
            self.served.routed(port, endpoint) for port, endpoint in endpoints(replica, spec)
        )

    def _routed(self, replica: Replica) -> bool:
        """The proxy still sends connections to one of its ports."""
        mine = {(replica.host, port) for port in replica.ports.values()}
        return any(mine & endpoints for endpoints in self.served.routes.values())

    def _restart_later(self, replica: Replica, now: float, why: str, repair: bool) -> None:
        if replica.ready_since and now - replica.ready_since >= BACKOFF_RESET:
            replica.backoff = 0  # it ran well for a while: start the back-off afresh
        replica.restarts += 1
        replica.backoff += 1
        replica.ready_since = 0.0
        replica.state = State.WAITING
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (replica.backoff - 1))
        replica.next_start_at = now + delay
        self.probes.pop(replica.id, None)
        replica.save(self.paths.replicas)
        self._note(replica.service, f"replica {replica.id} {why}; restart in {delay:.0f}s", repair)

    def _launch(self, replica: Replica) -> None:
        try:
            replica.pid, replica.started = self._runtime(replica).start(replica, self._log(replica))
        except OSError as exc:
            self._restart_later(replica, time.time(), f"could not start: {exc}", repair=False)
            return
        replica.state = State.RUNNING
        replica.save(self.paths.replicas)

    def _runtime(self, replica: Replica) -> Runtime:
        return self.containers if is_container(replica.spec) else self.processes

    def _stop_replica(self, replica: Replica, now: float) -> None:
        """Out of the routes first; SIGTERM once the proxy no longer sends it connections."""
        if replica.state == State.RUNNING:
            replica.state = State.STOPPING
            replica.stop_deadline = 0.0
            replica.drain_until = now + DRAIN_LIMIT
            replica.save(self.paths.replicas)
        else:
            self._forget(replica)

    def _forget(self, replica: Replica) -> None:
        replica.forget(self.paths.replicas)
        self.log_clock.forget(self._log(replica))
        self.replicas.pop(replica.id, None)
        self.probes.pop(replica.id, None)

    # -- one service ----------------------------------------------------------------------
    def _scale(self, name: str, spec: dict[str, Any], now: float) -> None:
        mine = [
            r for r in self.replicas.values() if r.service == name and r.state != State.STOPPING
        ]
        views = [ReplicaView(r.id, r.hash, self._available(r, spec)) for r in mine]
        strategy = spec.get("strategy") or {}
        decision = decide(
            spec["hash"],
            int(spec["replicas"]),
            int(strategy.get("maxSurge", 1)),
            int(strategy.get("maxUnavailable", 0)),
            views,
        )
        for replica_id in decision.stop:
            self._stop_replica(self.replicas[replica_id], now)
        taken = {p for r in self.replicas.values() for p in r.ports.values()}
        taken |= {int(p["port"]) for s in self.desired["services"].values() for p in s["ports"]}
        for _ in range(decision.start):
            names = [p["name"] for p in spec["ports"]]
            ports = dict(zip(names, allocate(self.host, len(names), taken), strict=True))
            replica = Replica(
                id=f"{name}-{spec['hash'][:8]}-{secrets.token_hex(4)}",
                host=self.host,
                service=name,
                hash=spec["hash"],
                revision=spec["revision"],
                spec=spec,
                ports=ports,
            )
            self.replicas[replica.id] = replica
            self._launch(replica)

    # -- status and the service ports -----------------------------------------------------
    def _publish(self, services: dict[str, Any], now: float) -> None:
        status: dict[str, Any] = {
            "applied": self.desired.get("hash"),
            "services": {name: self._service_status(name, spec) for name, spec in services.items()},
            "repairs": self.repairs[-KEEP_REPAIRS:],
            "repairSeq": self.repair_seq,
            "stray": sorted(r.id for r in self.replicas.values() if r.service not in services),
            "proxy": {"pid": self.serving.pid, "running": self.served.running},
        }
        if status != self.last_status or now - self.last_write >= HEARTBEAT:
            write_json(self.paths.status, {**status, "pid": os.getpid(), "heartbeat": now})
            self.last_status, self.last_write = status, now

    def _service_status(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        pods = [
            {
                "id": r.id,
                "hash": r.hash,
                "pid": r.pid,
                "state": r.state,
                "ready": self._available(r, spec),
                "restarts": r.restarts,
                "ports": r.ports,
            }
            for r in sorted(self.replicas.values(), key=lambda r: r.id)
            if r.service == name and r.state != State.STOPPING
        ]
        listeners = {str(p["port"]): self.served.listener(int(p["port"])) for p in spec["ports"]}
        return {
            "hash": spec["hash"],
            "replicas": spec["replicas"],
            "pods": pods,
            "listeners": listeners,
        }

    def _routes(self, services: dict[str, Any]) -> dict[int, list[Endpoint]]:
        """Service port -> the endpoints of ready replicas that serve it (by port name)."""
        routes: dict[int, list[Endpoint]] = {}
        for name, spec in services.items():
            for port in spec["ports"]:
                routes[int(port["port"])] = []
            for replica in self.replicas.values():
                if replica.service == name and self._ready(replica):
                    for port, endpoint in endpoints(replica, spec):
                        routes[port].append(endpoint)
        return {port: sorted(endpoints) for port, endpoints in routes.items()}

    def _note(self, service: str, what: str, repair: bool) -> None:
        if repair:
            self.repair_seq += 1
            self.repairs.append({"seq": self.repair_seq, "service": service, "what": what})
            del self.repairs[:-KEEP_REPAIRS]
        print(f"{time.strftime('%H:%M:%S')} {service}: {what}", flush=True)

    def _log(self, replica: Replica) -> Path:
        return self.paths.logs(replica.service) / f"{replica.id}.log"


_REQUIRED = ("hash", "revision", "replicas", "ports")
_RUNS = (("command", "cwd"), ("image",))  # a process, or a container


def _well_formed(desired: dict[str, Any]) -> bool:
    services = desired.get("services")
    return isinstance(services, dict) and all(
        isinstance(spec, dict)
        and all(key in spec for key in _REQUIRED)
        and any(all(key in spec for key in keys) for keys in _RUNS)
        for spec in services.values()
    )


def main() -> None:
    paths, host = cell_arguments(__doc__.splitlines()[0])
    paths.root.mkdir(parents=True, exist_ok=True)
    # One agent per cell, whoever started it: a second one would fight over the replicas.
    with open(paths.root / "agent.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another agent already runs {paths.root}; exiting", flush=True)
            return
        holder = ownership.holder(host)
        if holder is not None and not holder.is_cell(paths.root):
            print(f"address {host} is held by {holder.describe()}; exiting", flush=True)
            sys.exit(3)
        Agent(paths, host).run()


if __name__ == "__main__":
    main()
