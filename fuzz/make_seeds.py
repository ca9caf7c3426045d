#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ from the PDK spec examples in
tests/testdata/topics.json. Run it again when the examples change; the
output is checked in. Standard library only."""

import base64
import hashlib
import hmac
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent
EXAMPLES = ROOT.parent / "tests" / "testdata" / "topics.json"
PAGE_TOKEN_KEY = b"fuzz-page-token-key-0123456789abcdef"  # page_token_fuzzer.cc


def fuzz_string(text):
    """One FuzzInput::String: backslashes doubled, ended by backslash + 'x'."""
    return text.encode().replace(b"\\", b"\\\\") + b"\\x"


def int64(value):
    return struct.pack(">q", value)


def write(target, name, data):
    directory = ROOT / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def page_token(fields, descending, occur, sequence):
    """The token PageTokenCodec::Encode makes (query/page_token.cc)."""
    start, end, topics, panels, doors, persons, ous, family = fields

    def put_strings(tag, values):
        values = sorted(set(v.encode() for v in values))
        out = tag + int64(len(values))
        for v in values:
            out += int64(len(v)) + v
        return out

    def put_ints(tag, values):
        values = sorted(set(values))
        return tag + int64(len(values)) + b"".join(int64(v) for v in values)

    canonical = (b"S" if start is not None else b"s") + int64(start or 0)
    canonical += (b"E" if end is not None else b"e") + int64(end or 0)
    canonical += put_strings(b"T", topics) + put_strings(b"P", panels)
    canonical += put_ints(b"D", doors) + put_ints(b"H", persons)
    canonical += put_strings(b"O", ous) + b"F" + int64(len(family)) + family.encode()
    fingerprint = hashlib.sha256(canonical).digest()[:16]
    body = bytes([1, 1 if descending else 0]) + int64(occur) + int64(sequence) + fingerprint
    mac = hmac.new(PAGE_TOKEN_KEY, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=")


def page_token_input(fields, descending, occur, sequence, candidate):
    start, end, topics, panels, doors, persons, ous, family = fields
    out = bytes([(1 if start is not None else 0) | (2 if end is not None else 0)])
    if start is not None:
        out += int64(start)
    if end is not None:
        out += int64(end)
    out += bytes([len(topics)]) + b"".join(fuzz_string(t) for t in topics)
    out += bytes([len(panels)]) + b"".join(fuzz_string(p) for p in panels)
    out += bytes([len(doors)]) + b"".join(int64(d) for d in doors)
    out += bytes([len(persons)]) + b"".join(int64(p) for p in persons)
    out += bytes([len(ous)]) + b"".join(fuzz_string(o) for o in ous)
    out += fuzz_string(family)
    out += bytes([1 if descending else 0]) + int64(occur) + int64(sequence)
    return out + candidate


def get(payload, *path):
    for name in path:
        if not isinstance(payload, dict) or name not in payload:
            return None
        payload = payload[name]
    return payload


def main():
    topics = json.loads(EXAMPLES.read_text())["topics"]
    for i, entry in enumerate(topics):
        topic = entry["topic"]
        body = json.dumps(entry["example"], separators=(",", ":")).encode()
        name = f"{i:02d}-{topic}"
        write("normalizer", name, body)
        # Signed POST /webhooks in each configuration (flags: see the target).
        headers = b"Content-Type: application/json\nConnection: keep-alive\n\n"
        write("webhook_handler", name, bytes([0xC0 | ((i % 3) << 4)]) + headers + body)

        payload = entry["example"]
        door = get(payload, "body", "doorId")
        person = get(payload, "body", "personId")
        fields = [
            topic, entry["family"], str(get(payload, "panelId") or ""),
            str(get(payload, "metadata", "doorName") or ""), str(get(payload, "ou") or ""),
            str(get(payload, "id") or ""), str(get(payload, "user", "id") or ""), "default",
        ]
        csv = bytes([i % 2]) + int64(1000 + i) + int64(1646922708300 + i) + int64(1646922709000)
        csv += (b"\x01" + int64(door)) if isinstance(door, int) else b"\x00"
        csv += (b"\x01" + int64(person)) if isinstance(person, int) else b"\x00"
        csv += b"".join(fuzz_string(f) for f in fields) + body
        write("csv_writer", name, csv)

    # Requests other than a signed delivery, and refusals.
    write("webhook_handler", "unsigned-post", b"\x00\n\n{\"topic\":\"door.request.allowed\"}")
    write("webhook_handler", "get-healthz", b"\x05")
    write("webhook_handler", "get-metrics", b"\x09")
    write("webhook_handler", "put-webhooks", b"\x02X-PDK-SIGNATURE: 00\n\n{}")
    write("webhook_handler", "basic-wrong", b"\x50\n\n{\"topic\":\"ou.created\"}")
    write("webhook_handler", "unsigned-config", b"\x20X_PDK_SIGNATURE: zz\n\n{\"topic\":\"x\"}")
    write("webhook_handler", "bad-json", b"\xC0\n\n{\"topic\":")
    write("webhook_handler", "too-large", b"\xC0\n\n{\"topic\":\"x\",\"pad\":\"" + b"p" * 5000 + b"\"}")

    # Formula-looking cells, quotes, CR/LF, extreme times.
    write("csv_writer", "formulas", b"\x01" + int64(-1) + int64(-62167219200000)
          + int64(253402300799999) + b"\x01" + int64(-5) + b"\x00"
          + b"".join(fuzz_string(f) for f in ["=1+1", "+x", "-y", "@z", "\tt", "\rr",
                                               "a,b", "say \"hi\""]) + b"line1\r\nline2")
    write("csv_writer", "int64-extremes", b"\x00" + int64(2**63 - 1) + int64(-2**63)
          + int64(2**63 - 1) + b"\x01" + int64(-2**63) + b"\x01" + int64(2**63 - 1))

    # Page tokens: valid ones for their filter, and garbage.
    empty = (None, None, [], [], [], [], [], "")
    full = (1646870400000, 1646956800000, ["door.request.*", "door.alarm.forced"],
            ["1070000"], [3, 1], [17], ["ou-1"], "panel")
    for name, fields, descending, occur, sequence in [
            ("empty-filter", empty, False, 1646922708300, 42),
            ("full-filter-descending", full, True, 1646922708300, 7),
            ("negative-position", empty, True, -62167219200000, -1)]:
        token = page_token(fields, descending, occur, sequence)
        write("page_token", name, page_token_input(fields, descending, occur, sequence, token))
    write("page_token", "garbage", page_token_input(empty, False, 0, 0, b"not a token"))
    write("page_token", "empty-token", page_token_input(full, False, 0, 0, b""))
    write("page_token", "88-chars", page_token_input(empty, False, 0, 0, b"A" * 88))


if __name__ == "__main__":
    main()
