"""The fast JSON codec keeps what Procore sent, including what orjson alone would refuse."""

from __future__ import annotations

import json

from app.core import json_codec


class TestJsonCodec:
    def test_round_trip_keeps_order_unicode_and_large_ids(self) -> None:
        record = {"z": 1, "a": "Bâtiment 東京", "id": 2**62 + 7, "nested": {"x": [1.5, None]}}
        text = json_codec.dumps(record)
        assert list(json.loads(text)) == ["z", "a", "id", "nested"]
        assert json_codec.loads(text) == record and "東京" in text

    def test_integers_beyond_64_bits_fall_back_to_the_standard_library(self) -> None:
        huge = {"id": 2**70}
        assert json_codec.loads(json.dumps(huge)) == huge
        assert json.loads(json_codec.dumps(huge)) == huge

    def test_invalid_json_raises_value_error(self) -> None:
        try:
            json_codec.loads(b"{not json")
        except ValueError:
            return
        raise AssertionError("invalid JSON was accepted")
