"""``POST /v1/completions``: plain-text continuation of one prompt or a list of prompts."""

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..completing import Shape, answer, stream
from ..generation import text_prompt_ids
from ..schemas import CompletionRequest
from . import state

router = APIRouter()

TEXT = Shape(
    prefix="cmpl", object="text_completion", chunk_object="text_completion",
    choice=lambda k, text, finish: {"index": k, "text": text, "finish_reason": finish, "logprobs": None},
    delta=lambda k, text, finish, first: {"index": k, "text": text or "", "finish_reason": finish, "logprobs": None})


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    s = state(request)
    target = s.target(body.model, "completions")
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if not prompts or len(prompts) > s.config.max_inputs:
        from ..errors import ApiError

        raise ApiError(422, f"send 1 to {s.config.max_inputs} prompts", code="too_many_inputs", param="prompt")

    def make_ids(tokenizer):
        return [text_prompt_ids(tokenizer, p) for p in prompts]

    logged = {"prompt": prompts}
    if body.stream:
        events = await stream(s, request, target, body, make_ids, TEXT, logged)
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return await answer(s, request, target, body, make_ids, TEXT, logged)
