"""Keyless image verification: what one image signed with a Sigstore bundle costs cold and
cached, and what sigstore's offline verification of one bundle costs.

Against Debian's docker-registry on 127.0.0.1 (htpasswd auth, no referrers API: bundles are
found through the referrers tag), with the tests' own Sigstore instance (tests/sigstorekit.py).
Target: a cached verdict costs 0 registry requests.

Run: .venv/bin/python bench/keyless.py [--bundles 200] [--quick (5 bundles, as make test)]
Exit status: 1 if the target is missed or a verdict is wrong.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.imagekit import running_registry  # noqa: E402
from tests.sigstorekit import TestSigstore, attach, statement  # noqa: E402

from cellops.images import keyless  # noqa: E402
from cellops.images.registry import Registry  # noqa: E402
from cellops.images.verify import ImageVerifier  # noqa: E402
from cellops.spec.image_policy import ImagePolicy, SignatureAuthority  # noqa: E402

TRUSTED_ROOT = "keys/trusted_root.json"
ISSUER, SUBJECT = "https://issuer.cellops.test", "release@cellops.test"


def offline(sigstore: TestSigstore, bundles: int) -> None:
    """sigstore's verification alone: trusted root loaded once, then each bundle."""
    digest = "sha256:" + "ab" * 32
    started = time.perf_counter()
    verifier = keyless.load_root(TRUSTED_ROOT, sigstore.trusted_root())
    loaded = (time.perf_counter() - started) * 1000
    authority = keyless.Authority(ISSUER, SUBJECT, None, verifier)
    made = [sigstore.bundle(statement(digest), SUBJECT, ISSUER) for _ in range(bundles)]
    started = time.perf_counter()
    for bundle in made:
        keyless.verify(bundle, digest, [authority])
    each = (time.perf_counter() - started) * 1000 / bundles
    print(f"{'trusted root loaded':<38} {'':>9} {loaded:>9.2f}")
    print(f"{f'one bundle verified (of {bundles})':<38} {'':>9} {each:>9.2f}")


def registry_costs(sigstore: TestSigstore, folder: Path) -> int:
    with running_registry(folder) as registry:
        digest = registry.push_image("bench/web", "1.0")
        attach(registry, "bench/web", digest, sigstore.bundle(statement(digest), SUBJECT, ISSUER))
        identity = SignatureAuthority(issuer=ISSUER, subject=SUBJECT, trusted_root=TRUSTED_ROOT)
        policy = ImagePolicy(signatures=[identity])
        client = Registry(registry.credentials)
        verifier = ImageVerifier(client)
        read = {TRUSTED_ROOT: sigstore.trusted_root()}.__getitem__
        failures = 0
        for label in ("one keyless image, cold", "one keyless image, cached"):
            before, started = client.requests, time.perf_counter()
            verdict = verifier.verify(f"{registry.host}/bench/web@{digest}", policy, read)
            spent = (time.perf_counter() - started) * 1000
            print(f"{label:<38} {client.requests - before:>9} {spent:>9.2f}")
            failures += not verdict.ok
            if label.endswith("cached") and client.requests != before:
                print("MISSED: a cached verdict asked the registry")
                failures += 1
        return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="5 bundles: that it still runs")
    args = parser.parse_args()
    if args.quick:
        args.bundles = 5
    sigstore = TestSigstore()
    print(f"{'measure':<38} {'requests':>9} {'ms':>9}")
    offline(sigstore, args.bundles)
    if shutil.which("docker-registry") is None:
        print("docker-registry is not installed (.ci/run installs it): registry not measured")
        return 0
    with tempfile.TemporaryDirectory(prefix="cellops-bench-keyless-") as tmp:
        return 1 if registry_costs(sigstore, Path(tmp) / "registry") else 0


if __name__ == "__main__":
    sys.exit(main())
