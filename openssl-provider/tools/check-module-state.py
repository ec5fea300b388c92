#!/usr/bin/env python3
"""check-module-state: proves that the provider module keeps no state the
signer reads in memory untrusted code can write (docs/openssl.md, "No
writable state outside the domain").

  check-module-state.py MODULE CORDON_SCAN [EXPORT]

Fails (exit 1, one line per finding on stderr) when:
- a symbol lies in a writable section outside the PT_GNU_RELRO range
  (.data, .bss, a writable .got.plt) and is not on the allowlist below,
  each entry with its reason;
- the module has a PT_TLS segment (trusted code's TLS of a dlopen'ed module
  comes from __tls_get_addr, which allocates with glibc's malloc);
- the dynamic symbol table defines anything but EXPORT (default
  OSSL_provider_init; every
  other symbol must bind inside the module, never through interposition);
- the module is not linked -z now (BIND_NOW), so that RELRO covers the GOT;
- cordon-scan finds a WRPKRU or XRSTOR at any byte offset.
Exit 2 on a usage or tool error."""
import re
import subprocess
import sys

# name pattern -> why it may live in writable memory outside the domain
ALLOW = [
    (r"^_ZN15cordon_provider", "the provider glue's own state: untrusted code, which holds handles and public keys only"),
    (r"^(__dso_handle|__TMC_END__|completed\.0)$", "the C runtime's start-up words, read by no signer code"),
    (r"^__gmp_errno$", "GMP writes an error code there before it raises SIGFPE (division by zero); no signer code reads it"),
]


def run(args):
    try:
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"check-module-state: {' '.join(args)}: {e}", file=sys.stderr)
        sys.exit(2)


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    module, scan = sys.argv[1], sys.argv[2]
    export = sys.argv[3] if len(sys.argv) == 4 else "OSSL_provider_init"
    findings = []
    segments = run(["readelf", "-lW", module])
    relro = None
    for line in segments.splitlines():
        f = line.split()
        if f and f[0] == "GNU_RELRO":
            start = int(f[2], 16)
            relro = (start, start + int(f[5], 16))
        if f and f[0] == "TLS":
            findings.append("a PT_TLS segment: thread-local variables in a dlopen'ed module reach glibc's malloc")
    if relro is None:
        findings.append("no PT_GNU_RELRO segment: link with -z relro")
    dynamic = run(["readelf", "-dW", module])
    if not re.search(r"\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW", dynamic):
        findings.append("not linked -z now: the GOT would stay writable")
    # Writable sections outside RELRO.
    outside = {}
    for line in run(["readelf", "-SW", module]).splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*W\S*)", line)
        if not m:
            continue
        index, name, addr, size = int(m.group(1)), m.group(2), int(m.group(3), 16), int(m.group(4), 16)
        if size == 0:
            continue
        if relro is not None and relro[0] <= addr and addr + size <= relro[1]:
            continue
        outside[index] = name
    for line in run(["readelf", "-sW", module]).splitlines():
        f = line.split()
        if len(f) < 8 or not f[6].isdigit() or int(f[6]) not in outside:
            continue
        name = f[7]
        if not any(re.search(p, name) for p, _ in ALLOW):
            findings.append(f"{name} ({f[2]} bytes) in writable {outside[int(f[6])]} outside RELRO, not on the allowlist")
    # What the module exports.
    for line in run(["readelf", "--dyn-syms", "-W", module]).splitlines():
        f = line.split()
        if len(f) >= 8 and f[6] != "UND" and f[4] in ("GLOBAL", "WEAK") and f[7] != export:
            findings.append(f"exports {f[7]}: only {export} may be defined for other objects")
    scanned = subprocess.run([scan, module], capture_output=True, text=True)
    if scanned.returncode != 0:
        findings.append(f"cordon-scan: {scanned.stdout.strip() or scanned.stderr.strip()}")
    for f in findings:
        print(f"check-module-state: {module}: {f}", file=sys.stderr)
    if not findings:
        print(f"check-module-state: {module}: writable state outside RELRO is the allowlist's only; "
              f"no TLS; one export; no WRPKRU/XRSTOR")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
