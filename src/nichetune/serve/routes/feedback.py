"""``POST /v1/feedback``: the true label (or a grade) of a logged answer, by its ``x-request-id``, so monitoring
can measure accuracy and A/B tests can compare arms; feedback turns into training data (``monitor export``)."""

from fastapi import APIRouter, Request

from ..errors import ApiError
from ..schemas import FeedbackRequest
from . import state

router = APIRouter()


@router.post("/v1/feedback")
async def feedback(body: FeedbackRequest, request: Request) -> dict:
    s = state(request)
    if s.log is None:
        raise ApiError(409, "this server keeps no prediction log, so feedback has nothing to attach to",
                       code="no_prediction_log")
    key = request.scope.get("state", {}).get("api_key")
    s.log.feedback(request_id=body.request_id, idx=body.index, label=body.label, grade=body.grade,
                   key_name=key.name if key else None)
    return {"object": "feedback", "request_id": body.request_id, "index": body.index, "recorded": True}
