"""The API's JSON parser: DRF's, with a limit on nesting and on size.

Python's decoder recurses once per nested array or object, so 50,000 `[` raise RecursionError (a 500)
before any view runs; and DRF reads a JSON body from the stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
Both are refused here with a 4xx in the API's error shape. No request of this API nests deeply.
"""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

MAX_DEPTH = 32


def _deeper_than(value, limit: int) -> bool:
    """Whether `value` nests arrays/objects more than `limit` deep (iteratively: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            # Imported here: common.exceptions imports DRF's views, whose import loads this parser (a cycle).
            from common.exceptions import RequestTooLarge

            raise RequestTooLarge(f"The JSON body is larger than {limit} bytes, the most this API accepts.")
        try:
            text = codecs.decode(raw, encoding)
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _deeper_than(data, MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.")
        return data
