"""Envelopes, proto3 JSON helpers, result and child encoding, error mapping."""

import base64
import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from taskframe import NonRetryableError, Output, RetryAfter, describe_error  # noqa: E402
from taskframe._codec import (  # noqa: E402
    as_int,
    b64decode,
    child_spec,
    decode_envelopes,
    decode_header,
    encode_envelope,
    encode_value,
)


class EnvelopeTest(unittest.TestCase):
    def test_encodes_flags_length_and_json(self):
        data = encode_envelope({"workerId": "w-1"})
        self.assertEqual(data[0], 0)
        self.assertEqual(struct.unpack(">I", data[1:5])[0], len(data) - 5)
        self.assertEqual(json.loads(data[5:]), {"workerId": "w-1"})

    def test_end_of_stream_flag_and_round_trip(self):
        body = encode_envelope({"assignments": [{"taskId": "t"}]}) + encode_envelope({}, flags=0x02)
        self.assertEqual(decode_envelopes(body), [(0, {"assignments": [{"taskId": "t"}]}), (2, {})])
        self.assertEqual(decode_header(body[:5]), (0, len(body) - 5 - 7))

    def test_unicode_is_utf8_and_length_in_bytes(self):
        data = encode_envelope({"text": "héllo ✓"})
        self.assertEqual(struct.unpack(">I", data[1:5])[0], len(data) - 5)
        self.assertEqual(decode_envelopes(data)[0][1]["text"], "héllo ✓")

    def test_truncated_input_is_rejected(self):
        data = encode_envelope({"a": 1})
        with self.assertRaises(ValueError):
            decode_envelopes(data[:-1])
        with self.assertRaises(ValueError):
            decode_envelopes(data[:3])


class Proto3JsonTest(unittest.TestCase):
    def test_base64_standard_urlsafe_and_unpadded(self):
        raw = bytes(range(256))
        self.assertEqual(b64decode(base64.b64encode(raw).decode()), raw)
        self.assertEqual(b64decode(base64.urlsafe_b64encode(raw).decode().rstrip("=")), raw)
        self.assertEqual(b64decode(None), b"")
        self.assertEqual(b64decode(""), b"")

    def test_64_bit_integers_arrive_as_strings(self):
        self.assertEqual(as_int("18446744073709551615"), 2**64 - 1)
        self.assertEqual(as_int(7), 7)
        self.assertEqual(as_int(None), 0)


class ResultEncodingTest(unittest.TestCase):
    def test_bytes_as_is(self):
        self.assertEqual(encode_value(b"\x00\xff"), (b"\x00\xff", "application/octet-stream"))
        self.assertEqual(encode_value(bytearray(b"ab")), (b"ab", "application/octet-stream"))

    def test_str_as_utf8_text(self):
        self.assertEqual(encode_value("héllo"), ("héllo".encode(), "text/plain; charset=utf-8"))

    def test_none_as_empty(self):
        self.assertEqual(encode_value(None), (b"", ""))

    def test_other_values_as_compact_json(self):
        self.assertEqual(encode_value({"a": [1, 2], "é": True}), ('{"a":[1,2],"é":true}'.encode(), "application/json"))
        self.assertEqual(encode_value(3), (b"3", "application/json"))
        self.assertEqual(encode_value(False), (b"false", "application/json"))

    def test_output_keeps_its_content_type(self):
        self.assertEqual(encode_value(Output(b"<p/>", "text/html")), (b"<p/>", "text/html"))
        self.assertEqual(encode_value(Output("{}", "application/json")), (b"{}", "application/json"))

    def test_unencodable_value_raises(self):
        with self.assertRaises(TypeError):
            encode_value(object())


class ErrorMappingTest(unittest.TestCase):
    def test_non_retryable(self):
        self.assertEqual(
            describe_error(NonRetryableError("bad input")),
            {"type": "NonRetryableError", "message": "bad input", "nonRetryable": True},
        )

    def test_subclass_of_non_retryable_keeps_its_name(self):
        class BadInput(NonRetryableError):
            pass

        self.assertEqual(describe_error(BadInput("x"))["type"], "BadInput")
        self.assertTrue(describe_error(BadInput("x"))["nonRetryable"])

    def test_retry_after(self):
        described = describe_error(RetryAfter(0.3, "busy"))
        self.assertEqual(described, {"type": "RetryAfter", "message": "busy", "nonRetryable": False, "retryAfterMs": 300})
        self.assertEqual(describe_error(RetryAfter(2))["retryAfterMs"], 2000)
        with self.assertRaises(ValueError):
            RetryAfter(-1)

    def test_anything_else_is_retryable_with_its_class_name(self):
        self.assertEqual(
            describe_error(ValueError("nope")),
            {"type": "ValueError", "message": "nope", "nonRetryable": False},
        )
        self.assertEqual(describe_error(KeyError("k"))["message"], "'k'")
        dynamic = type("Custom.Type", (Exception,), {})
        self.assertEqual(describe_error(dynamic("m"))["type"], "Custom.Type")


class ChildSpecTest(unittest.TestCase):
    def test_handler_child_with_json_input_needs_and_retries(self):
        spec = child_spec({"key": "a", "handler": "resize", "input": {"size": 64}, "needs": ["b"], "retries": 2})
        self.assertEqual(
            spec,
            {
                "key": "a",
                "spec": {
                    "name": "a",
                    "handler": {
                        "handler": "resize",
                        "input": base64.b64encode(b'{"size":64}').decode(),
                        "contentType": "application/json",
                    },
                    "needs": ["b"],
                    "retry": {"retries": 2},
                },
            },
        )

    def test_exec_child(self):
        spec = child_spec({"key": "e", "command": "/bin/echo", "args": ["hi", 3]})
        self.assertEqual(spec["spec"]["exec"], {"command": "/bin/echo", "args": ["hi", "3"]})

    def test_mistakes_are_reported(self):
        for child, message in [
            ({"handler": "x"}, "key"),
            ({"key": "a"}, "handler"),
            ({"key": "a", "handler": "x", "retires": 1}, "unknown key"),
            ({"key": "a", "handler": "x", "command": "y"}, "both"),
        ]:
            with self.assertRaisesRegex(ValueError, message):
                child_spec(child)


if __name__ == "__main__":
    unittest.main()
