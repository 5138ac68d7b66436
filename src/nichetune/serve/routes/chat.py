"""``POST /v1/chat/completions``: the model's own chat template, optionally streamed as server-sent events, and
optionally answered from an index (``retrieval``) with the citations checked."""

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..completing import Shape, answer, stream
from ..errors import ApiError
from ..generation import chat_prompt_ids
from ..schemas import ChatRequest, Retrieval
from . import state

router = APIRouter()

CHAT = Shape(
    prefix="chatcmpl", object="chat.completion", chunk_object="chat.completion.chunk",
    choice=lambda k, text, finish: {"index": k, "message": {"role": "assistant", "content": text},
                                    "finish_reason": finish, "logprobs": None},
    delta=lambda k, text, finish, first: {"index": k, "delta": ({"role": "assistant", "content": ""} if first
                                                                else {"content": text} if text else {}),
                                          "finish_reason": finish, "logprobs": None})


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    s = state(request)
    target = s.target(body.model, "chat")
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    logged, extra = {"messages": messages}, None
    retrieval = body.retrieval
    if retrieval is None and target.name in s.config.retrieve:  # the model answers from its index by default
        retrieval = Retrieval(index=s.config.retrieve[target.name])
    if retrieval is not None:
        from ..retrieving import with_retrieval

        messages, used, extra = await with_retrieval(s, request, messages, retrieval)
        logged.update(used)

    def make_ids(tokenizer):
        if not tokenizer.chat_template:
            raise ApiError(400, f"{target.name} has no chat template; send plain text to /v1/completions",
                           code="no_chat_template", param="model")
        try:
            return [chat_prompt_ids(tokenizer, messages)]
        except Exception as exc:  # jinja2's TemplateError and what a template raises on purpose
            raise ApiError(400, f"{target.name}'s chat template refused these messages: {exc}",
                           code="chat_template_error", param="messages") from exc

    if body.stream:
        events = await stream(s, request, target, body, make_ids, CHAT, logged, extra)
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return await answer(s, request, target, body, make_ids, CHAT, logged, extra)
