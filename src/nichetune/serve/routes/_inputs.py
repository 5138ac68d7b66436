"""The text list a classify or embeddings request carries, checked against the server's input cap."""

from ..errors import ApiError


def texts_of(value: str | list[str], limit: int) -> list[str]:
    texts = [value] if isinstance(value, str) else list(value)
    if not 1 <= len(texts) <= limit:
        raise ApiError(422, f"send 1 to {limit} texts in 'input' (got {len(texts)})", code="too_many_inputs",
                       param="input")
    return texts
