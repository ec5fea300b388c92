#!/usr/bin/env python3
"""The runtime's gates and the pass's generated gates share their instruction
sequences (runtime/gates/gate_sequences.inc): check that the bytes are the
same in both.

usage: gate_sequences_test.py RUNTIME_GATE_OBJECT PASS_OBJECT

It reads the objects with GNU binutils (objdump, objcopy, readelf).

RUNTIME_GATE_OBJECT is gate.S's object in the static library (assembled by
GNU as), PASS_OBJECT a module compiled by clang 14 with the plugin. Every
expansion of a shared sequence records where it starts and ends in section
.cordon_sequences (SEQUENCE_RECORD; the linker drops it). Each of the
pass's expansions must equal, byte for byte, some expansion of the same
sequence in the runtime, except where relocations fill in addresses: those
bytes are masked, and what fills them in (relocation type, symbol and
addend: which config field, which TLS word) must be the same. Branch
displacements are masked too; the branch's opcode and size, and its target
when it is a named symbol (cordon_gate_fatal_*), must be the same. Each
gate of either kind must also have every sequence it is made of, so that a
hand-written copy in place of a macro, equal or not, fails the test.
"""
import re
import subprocess
import sys
import tempfile

# The sequences every gate is made of. SCRUB_VECTORS_<w>: the runtime's
# gates clear zmm16-31 by variant (0, 1), the pass's as the config page says
# (2, as the runtime's signal paths do); SCRUB_GENERAL_<r9>_<r11>: which
# result registers survive.
CORE = {"CHECKED_WRPKRU", "RECORD_AT_INDEX", "TLS_ROW_FROM_CALLER", "TLS_ROW_TO_TCB", "CLAIM_RECORD",
        "SWITCH_TO_RECORD", "HELD_CLAIM", "RESTORE_CALLER_FS", "RELEASE_RECORD"}
RUNTIME_GATE = {"avx": CORE | {"SCRUB_VECTORS_0", "SCRUB_GENERAL_1_0"},
                "avx512": CORE | {"SCRUB_VECTORS_1", "SCRUB_AVX512", "SCRUB_GENERAL_1_0"}}
PASS_GATE = CORE | {"SCRUB_VECTORS_2", "SCRUB_AVX512"}
# Expansions only the pass's gates have, by design: no runtime gate returns
# nothing (r11 cleared too) or two registers (r9 kept).
PASS_ONLY = {"SCRUB_GENERAL_1_1", "SCRUB_GENERAL_0_0"}

failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


class Insn:
    def __init__(self, offset, data, text, relocs):
        self.offset, self.data, self.text, self.relocs = offset, data, text, relocs

    def normalized(self):
        """The bytes with relocated fields and branch displacements masked,
        and what fills them in."""
        data = list(self.data)
        fills = []
        branch = re.match(r"(j[a-z]+|call|jmp)\s+[0-9a-f]+ <([^>]*)>", self.text)
        if branch:
            size = 1 if data[0] in (0xeb, 0xe3) or 0x70 <= data[0] <= 0x7f else 4
            for i in range(len(data) - size, len(data)):
                data[i] = None
            target = branch.group(2)
            for _, kind, symbol in self.relocs:
                target = re.sub(r"-0x4$", "", symbol)
            fills.append(("branch", target if re.fullmatch(r"cordon_gate_fatal_\w+", target) else "local"))
        else:
            for offset, kind, symbol in self.relocs:
                size = 8 if kind == "R_X86_64_64" else 4
                for i in range(offset - self.offset, offset - self.offset + size):
                    data[i] = None
                fills.append((offset - self.offset, kind, symbol))
        return (" ".join("__" if b is None else "%02x" % b for b in data), tuple(fills))


def disassemble(obj):
    """.text's instructions by offset, and its function symbols' extents."""
    insns, functions = {}, {}
    line_re = re.compile(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t([^\t]*)(.*)$")
    for line in run("objdump", "-d", "-r", "-w", "-j", ".text", obj).splitlines():
        function = re.match(r"^([0-9a-f]+) <([^>]+)>:$", line)
        if function:
            functions[function.group(2)] = int(function.group(1), 16)
            continue
        m = line_re.match(line)
        if not m:
            continue
        relocs = [(int(o, 16), kind, symbol)
                  for o, kind, symbol in re.findall(r"\t([0-9a-f]+): (R_X86_64_\w+)\t(\S+)", m.group(4))]
        offset = int(m.group(1), 16)
        insns[offset] = Insn(offset, bytes.fromhex(m.group(2).replace(" ", "")), m.group(3).strip(), relocs)
    return insns, functions


def sequences(obj):
    """(key, begin, end) for every recorded expansion, from the section's
    bytes (the keys) and its relocations (begin and end, .text offsets)."""
    with tempfile.NamedTemporaryFile() as dump:
        run("objcopy", "--dump-section", ".cordon_sequences=" + dump.name, obj, "/dev/null")
        data = open(dump.name, "rb").read()
    addends = {}
    in_section = False
    for line in run("readelf", "-rW", obj).splitlines():
        if line.startswith("Relocation section"):
            in_section = "'.rela.cordon_sequences'" in line
            continue
        m = re.match(r"^([0-9a-f]+)\s+\S+\s+R_X86_64_64\s+[0-9a-f]+\s+\.text \+ ([0-9a-f]+)$", line.strip())
        if in_section and m:
            addends[int(m.group(1), 16)] = int(m.group(2), 16)
    records, pos = [], 0
    while pos < len(data):
        end_of_key = data.index(b"\0", pos + 16)
        records.append((data[pos + 16:end_of_key].decode(), addends[pos], addends[pos + 8]))
        pos = end_of_key + 1
    return records


def expansion(insns, begin, end, where):
    out, offset = [], begin
    while offset < end:
        if offset not in insns:
            fail("%s: no instruction starts at .text+%#x" % (where, offset))
            return None
        out.append(insns[offset])
        offset += len(insns[offset].data)
    return out if offset == end else None


def owner(functions, offset):
    best = None
    for name, start in functions.items():
        if start <= offset and (best is None or start > functions[best]):
            best = name
    return best


def load(obj, label):
    insns, functions = disassemble(obj)
    by_function = {}
    for key, begin, end in sequences(obj):
        body = expansion(insns, begin, end, "%s %s at .text+%#x" % (label, key, begin))
        if body is None:
            continue
        by_function.setdefault(owner(functions, begin), []).append((key, begin, body))
    return by_function


def main():
    runtime_obj, pass_obj = sys.argv[1:3]
    runtime = load(runtime_obj, "runtime")
    generated = load(pass_obj, "pass")

    runtime_forms = {}
    for seqs in runtime.values():
        for key, _, body in seqs:
            runtime_forms.setdefault(key, set()).add(tuple(i.normalized() for i in body))

    gates = [name for name in runtime if re.fullmatch(r"cordon_gate_(avx|avx512)_([0-9]+)", name)]
    if len(gates) != 30:
        fail("expected the 30 runtime gates, found %d with sequences" % len(gates))
    for name in sorted(gates):
        have = {key for key, _, _ in runtime[name]}
        variant = re.fullmatch(r"cordon_gate_(avx|avx512)_[0-9]+", name).group(1)
        if not RUNTIME_GATE[variant] <= have:
            fail("runtime %s lacks %s" % (name, sorted(RUNTIME_GATE[variant] - have)))

    if not generated:
        fail("the pass's object has no recorded sequences")
    compared = 0
    for name, seqs in sorted(generated.items()):
        have = {key for key, _, _ in seqs}
        if not PASS_GATE <= have:
            fail("pass gate %s lacks %s" % (name, sorted(PASS_GATE - have)))
        if not any(key.startswith("SCRUB_GENERAL_") for key in have):
            fail("pass gate %s lacks SCRUB_GENERAL" % name)
        for key, begin, body in seqs:
            if key in PASS_ONLY:
                continue
            form = tuple(i.normalized() for i in body)
            if form in runtime_forms.get(key, ()):
                compared += 1
                continue
            fail("pass gate %s: %s at .text+%#x matches none of the runtime's %d forms of it"
                 % (name, key, begin, len(runtime_forms.get(key, ()))))
            print("  pass:\n" + "\n".join("    %-40s %s" % (i.normalized()[0], i.text) for i in body))
            for other in sorted(runtime_forms.get(key, ()))[:3]:
                print("  a runtime form:\n" + "\n".join("    %s %s" % (b, f) for b, f in other))
    print("%d pass expansions in %d gates, each byte-identical to a runtime one (relocated fields masked)"
          % (compared, len(generated)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
