#!/usr/bin/env python3
"""The schema in its three places says the same (docs/audit.md, "Record
format" and "Events"): the markdown tables of docs/audit.md, the JSON Schema
docs/audit-schema-v1.json, and cordon-audit's own tables (what
`cordon-audit schema` prints from them must be the file, byte for byte).
Then a real JSON Schema validator (python3-jsonschema, draft 2020-12)
checks the document and judges records: every line of a valid stream passes,
and each kind of invalid record that JSON Schema can express fails.

usage: schema_agreement_test.py SOURCE_DIR CORDON_AUDIT
"""
import copy
import json
import os
import re
import subprocess
import sys

try:
    import jsonschema
except ImportError:
    # Debian's python3-jsonschema (tools/bootstrap) lives with Debian's
    # interpreter, which may not be the first python3 on PATH.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("FAIL: no jsonschema module: install python3-jsonschema (tools/bootstrap)")
    sys.exit(1)

src, audit = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(name, expected, actual):
    global passed, failed
    if expected == actual:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: expected [{expected}], got [{actual}]")


def cells(row):
    # Split a markdown table row on the pipes that are not escaped (\|).
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def table_after(text, heading_re):
    """The rows (as cell lists) of the first table after the line matching heading_re."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if re.search(heading_re, l))
    rows, in_table = [], False
    for l in lines[start + 1:]:
        if l.startswith("|"):
            in_table = True
            rows.append(cells(l))
        elif in_table:
            break
    return rows[2:]  # the header and the |---| line


doc = open(os.path.join(src, "docs/audit.md")).read()
schema_text = open(os.path.join(src, "docs/audit-schema-v1.json")).read()
schema = json.loads(schema_text)
defs = schema["$defs"]

# 1. cordon-audit's tables are the file.
printed = subprocess.run([audit, "schema"], capture_output=True, text=True, check=True).stdout
check("cordon-audit schema prints docs/audit-schema-v1.json", schema_text, printed)


def resolve(s):
    while "$ref" in s:
        s = defs[s["$ref"].split("/")[-1]]
    return s


def json_type(s):
    s = resolve(s)
    if "type" in s:
        return s["type"]
    values = [s["const"]] if "const" in s else s.get("enum", [])
    kinds = {type(v) for v in values}
    return {str: "string", int: "integer"}.get(kinds.pop(), "?") if len(kinds) == 1 else "?"


# 2. The record's fields: names, order, JSON types.
fields = table_after(doc, r"^## Record format")
# A name cell "`mac` (optional)" is a field a record may leave out.
md_fields = [(re.findall(r"`([^`]+)`", f[0])[0], f[1]) for f in fields]
md_optional = [re.findall(r"`([^`]+)`", f[0])[0] for f in fields if "(optional)" in f[0]]
check("fields: names in order", [f[0] for f in md_fields], list(schema["properties"]))
check("fields: the optional ones last", [f[0] for f in md_fields[len(md_fields) - len(md_optional):]], md_optional)
check("fields: the others required", [f[0] for f in md_fields if f[0] not in md_optional], schema["required"])
check("field mac: 64 lowercase hex digits", "^[0-9a-f]{64}$", schema["properties"].get("mac", {}).get("pattern"))
check("fields: no others", False, schema["additionalProperties"])
for name, kind in md_fields:
    check(f"field {name}: JSON type", kind, json_type(schema["properties"].get(name, {})))
check("field schema: the constant", "cordon.audit/1", schema["properties"]["schema"].get("const"))

# 3. The argument types and their value encodings.
types = table_after(doc, r"^Argument types and how")
md_types = {}
for t in types:
    for name in re.findall(r"`([^`]+)`", t[0]):
        md_types[name] = t[1]
type_defs = {d["title"]: d for d in defs.values() if "title" in d}
check("argument types: the same names", sorted(md_types), sorted(type_defs))
for name, words in md_types.items():
    d = type_defs.get(name, {})
    if words.startswith("integer"):
        check(f"type {name}: integer", "integer", d.get("type"))
        check(f"type {name}: signedness", "unsigned" not in words, d.get("minimum", 0) < 0)
        check(f"type {name}: 64 bits", True, "64 bits" in words and d.get("maximum") in (2**63 - 1, 2**64 - 1))
    elif words.startswith("string, `\"0x\"`"):
        pattern = re.compile(d.get("pattern", "^$"))
        verdicts = {s: bool(pattern.match(s)) for s in ["0x0", "0x7f3a", "0xffffffffffffffff",
                                                        "0x00", "0x07", "0X1", "0xA", "7f", "0x", "0x1ffffffffffffffff"]}
        check(f"type {name}: \"0x\" lowercase hex, no leading zeros, 0x0 for null",
              {"0x0": True, "0x7f3a": True, "0xffffffffffffffff": True, "0x00": False, "0x07": False, "0X1": False,
               "0xA": False, "7f": False, "0x": False, "0x1ffffffffffffffff": False}, verdicts)
    elif words.startswith("string, JSON-escaped"):
        check(f"type {name}: a string of bytes (code points <= 0xff)", ("string", "^[\\u0000-\\u00ff]*$"),
              (d.get("type"), d.get("pattern")))
    elif words.startswith("array of strings"):
        check(f"type {name}: an array of pointers", ("array", "#/$defs/pointer"),
              (d.get("type"), d.get("items", {}).get("$ref")))
    else:
        check(f"type {name}: a known encoding", "known", words)

# 4. The events: ids, names, arguments (name, type, order), fixed values,
# the sha256 digest and the six system-call arguments.
events = table_after(doc, r"^## Events")
md_events = []
arg_re = re.compile(r"`(\w+)`: (const char\*|void\*|unsigned long\[\]|int|u64|size_t)")
for e in events:
    event_id, name = int(e[0]), e[1].strip("`")
    matches = list(arg_re.finditer(e[2]))
    args = []
    for i, m in enumerate(matches):
        rest = e[2][m.end():matches[i + 1].start() if i + 1 < len(matches) else len(e[2])]
        values = re.findall(r"`([A-Za-z_0-9]+(?:\\\|[A-Za-z_0-9]+)+)`", rest)
        args.append({"name": m.group(1), "type": m.group(2),
                     "values": values[0].split("\\|") if values else None,
                     "sha256": "64 lowercase hex digits" in rest,
                     "count": int(re.search(r"\((\d+) values\)", rest).group(1)) if re.search(r"\((\d+) values\)", rest) else None})
    md_events.append((event_id, name, args))
check("events: ids 1..N in order", list(range(1, len(md_events) + 1)), [e[0] for e in md_events])
check("events: eventName's values", [e[1] for e in md_events], schema["properties"]["eventName"]["enum"])
check("events: eventId's range", (1, len(md_events)),
      (schema["properties"]["eventId"]["minimum"], schema["properties"]["eventId"]["maximum"]))
check("events: one schema each", [{"$ref": f"#/$defs/{e[1]}"} for e in md_events], schema["oneOf"])
for event_id, name, args in md_events:
    d = defs.get(name, {}).get("properties", {})
    check(f"{name}: eventId", event_id, d.get("eventId", {}).get("const"))
    check(f"{name}: eventName", name, d.get("eventName", {}).get("const"))
    check(f"{name}: argsNum", len(args), d.get("argsNum", {}).get("const"))
    items = d.get("args", {}).get("prefixItems", [])
    check(f"{name}: exactly these args", (False, len(args)), (d.get("args", {}).get("items"), d.get("args", {}).get("minItems")))
    got = []
    for item in items:
        p = item["properties"]
        value = p["value"]
        got.append({"name": p["name"]["const"], "type": p["type"]["const"],
                    "values": value.get("enum"),
                    "sha256": value.get("pattern") == "^[0-9a-f]{64}$",
                    "count": value.get("minItems") if value.get("minItems") == value.get("maxItems") else "min != max"})
    check(f"{name}: the arguments", args, got)

# 5. A real validator: the document is a draft 2020-12 schema, and it judges
# records as cordon-audit does where JSON Schema can say it.
V = jsonschema.Draft202012Validator
try:
    V.check_schema(schema)
    check("the document is a valid draft 2020-12 schema", True, True)
except jsonschema.SchemaError as e:
    check("the document is a valid draft 2020-12 schema", "", str(e).splitlines()[0])
validator = V(schema)
stream = [json.loads(l) for l in open(os.path.join(src, "tests/audit/valid_all_events.jsonl"))]
for i, r in enumerate(stream, 1):
    errors = [e.message for e in validator.iter_errors(r)]
    check(f"valid stream line {i} ({r['eventName']}) passes the schema", [], errors)
    keyed = dict(r, mac=os.urandom(32).hex())
    check(f"valid stream line {i} with a mac passes the schema", [], [e.message for e in validator.iter_errors(keyed)])


def record(name):
    return copy.deepcopy(next(r for r in stream if r["eventName"] == name))


def arg(r, name):
    return next(a for a in r["args"] if a["name"] == name)


bad = {}
r = record("domain_create"); arg(r, "pkey")["value"] = "1"; bad["int as a string"] = r
r = record("domain_create"); arg(r, "region_size")["value"] = -1; bad["negative size_t"] = r
r = record("domain_create"); arg(r, "region_size")["value"] = 2**64; bad["size_t past 64 bits"] = r
r = record("domain_create"); arg(r, "region_start")["value"] = "0x7F3A"; bad["uppercase hex"] = r
r = record("domain_create"); arg(r, "region_start")["value"] = "0x0ab"; bad["leading zero"] = r
r = record("domain_create"); r["args"].pop(); r["argsNum"] -= 1; bad["missing argument"] = r
r = record("domain_create"); r["args"].reverse(); bad["arguments out of order"] = r
r = record("domain_create"); arg(r, "pkey")["type"] = "u64"; bad["wrong type name"] = r
r = record("domain_create"); arg(r, "pkey")["extra"] = 1; bad["extra member in an argument"] = r
r = record("domain_create"); arg(r, "name")["value"] = "\u0100"; bad["string beyond bytes"] = r
r = record("domain_create"); r["argsNum"] = 4; bad["argsNum disagrees"] = r
r = record("domain_create"); r["eventId"] = 2; bad["eventId disagrees"] = r
r = record("domain_create"); r["extra"] = 1; bad["unknown field"] = r
r = record("domain_create"); del r["threadId"]; bad["missing field"] = r
r = record("domain_create"); r["schema"] = "cordon.audit/2"; bad["another schema"] = r
r = record("domain_create"); r["processId"] = 0; bad["pid 0"] = r
r = record("cordon_lockdown"); arg(r, "violation")["value"] = "warn"; bad["value outside the set"] = r
r = record("code_publish"); arg(r, "sha256")["value"] = arg(r, "sha256")["value"].upper(); bad["uppercase sha256"] = r
r = record("syscall_refused"); arg(r, "syscall_args")["value"].pop(); bad["five syscall args"] = r
r = record("syscall_refused"); arg(r, "syscall_args")["value"][0] = 0; bad["syscall arg as an integer"] = r
r = record("audit_lost"); r["eventName"] = "audit_gone"; bad["unknown event"] = r
r = record("audit_lost"); r["mac"] = os.urandom(32).hex().upper(); bad["uppercase mac"] = r
r = record("audit_lost"); r["mac"] = os.urandom(31).hex(); bad["short mac"] = r
for what, r in bad.items():
    check(f"the schema refuses: {what}", False, validator.is_valid(r))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
