"""Video checks: what a video file declares, what actually decodes, and frames sampled for labeling.

The service streams the object from the store into a temporary file and hands it here, as a path
or a binary file object; nothing in this package touches the network, the database or Kafka.

Reading is split in three layers so the judgement stays pure and re-playable:

1. ``container``: the container's structure (``truncated``, ``missing_index``) from a few header
   bytes, for the MP4/MOV, Matroska/WebM and AVI families;
2. ``decode``: one decode pass with PyAV that reduces every frame, as it arrives, to its
   presentation time, a 64x64 grayscale thumbnail and a 160-column detail picture with every
   row (for the ghost checks); a few of those and the frame being
   decoded are all that is held, so memory does not grow with the video's length;
3. ``frame_scan``: :func:`summarize_frames`, a pure fold over those frames (timing, repeated
   pictures, black and blank frames, with ``interruptions`` for stutters and black gaps between
   moving pictures and ``ghosts`` for blended and combed frames, each with the time ranges it
   found them at); ``report`` then judges the flat metrics against
   :data:`DEFAULT_VIDEO_THRESHOLDS` with :func:`judge_metrics` -- the same judgement the image
   checks use, so a dataset whose policy changes is re-judged from stored metrics without
   decoding the video again.

``sampling`` picks the frames to label from the same thumbnails. :func:`analyze_video` and
:func:`sample_frames` are the entry points the service needs.
"""

from services.clean.checks.video.container import VideoSource
from services.clean.checks.video.decode import UnreadableVideo, VideoProbe
from services.clean.checks.video.frame_scan import VideoScan
from services.clean.checks.video.report import (
    DEFAULT_VIDEO_THRESHOLDS,
    VIDEO_CORRUPTION_CODES,
    VIDEO_CORRUPTION_ORDER,
    VideoReport,
    analyze_video,
)
from services.clean.checks.video.sampling import SampledFrame, sample_frames

__all__ = [
    "DEFAULT_VIDEO_THRESHOLDS",
    "VIDEO_CORRUPTION_CODES",
    "VIDEO_CORRUPTION_ORDER",
    "SampledFrame",
    "UnreadableVideo",
    "VideoProbe",
    "VideoReport",
    "VideoScan",
    "VideoSource",
    "analyze_video",
    "sample_frames",
]
