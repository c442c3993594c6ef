/* The pin panel: scrub a clip frame by frame, and see the exact frame a pin would store, rendered by the
 * server. A frame index is derived from a time the same way on both sides: frame i is on screen during
 * [i/fps, (i+1)/fps), and times travel as whole milliseconds. */
(() => {
  "use strict";

  const configNode = document.getElementById("pin-panel-config");
  const panel = document.querySelector(".pin-panel");
  if (!configNode || !panel) return;
  const config = JSON.parse(configNode.textContent);
  const video = panel.querySelector("[data-role=player]");
  if (!video || !config.previewUrl) return;

  const $ = (role) => panel.querySelector(`[data-role="${role}"]`);
  const scrubber = $("scrubber");
  const stamp = $("timestamp");
  const clock = $("clock");
  const frameOut = $("frame");
  const playButton = $("play");
  const preview = $("preview");
  const previewImage = $("preview-image");
  const previewError = $("preview-error");
  const previewCaption = $("preview-caption");
  const form = $("pin-form");

  const fps = config.fps || 30;
  const duration = config.duration || 0;
  const lastIndex = Math.max(0, (config.frameCount || Math.round(duration * fps)) - 1);
  const PREVIEW_DELAY_MS = 250;

  const round3 = (t) => Math.round(t * 1000) / 1000;
  const clampTime = (t) => Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), duration);
  const frameAt = (t) => Math.min(Math.floor(t * fps + 1e-6), lastIndex);
  // The first whole millisecond at which frame i is on screen.
  const frameStart = (i) => Math.ceil((Math.min(Math.max(i, 0), lastIndex) / fps) * 1000 - 1e-6) / 1000;
  const formatTime = (t) => {
    const ms = Math.round(t * 1000);
    const pad = (n, w) => String(n).padStart(w, "0");
    return `${pad(Math.floor(ms / 60000), 2)}:${pad(Math.floor(ms / 1000) % 60, 2)}.${pad(ms % 1000, 3)}`;
  };

  let current = round3(clampTime(config.start));
  let previewTimer = null;
  let previewSeq = 0;
  let previewObjectUrl = null;

  // --- Readouts and seeking ------------------------------------------------------------------------------

  function show(t) {
    current = round3(clampTime(t));
    scrubber.value = current.toFixed(3);
    if (document.activeElement !== stamp) stamp.value = current.toFixed(3);
    clock.textContent = formatTime(current);
    frameOut.textContent = String(frameAt(current));
    panel.dataset.time = current.toFixed(3);
    schedulePreview();
  }

  function seek(t) {
    show(t);
    if (video.readyState >= 1 && Math.abs(video.currentTime - current) > 0.0005) video.currentTime = current;
  }

  function step(kind, amount) {
    video.pause();
    if (kind === "frame") seek(frameStart(frameAt(current) + amount));
    else seek(current + amount);
  }

  function togglePlay() {
    if (video.paused) video.play().catch(() => {});
    else video.pause();
  }

  // --- The server-rendered preview -------------------------------------------------------------------------

  function setFrameActionsEnabled(enabled) {
    form.querySelectorAll("[data-frame-action]:not([data-locked])").forEach((button) => {
      button.disabled = !enabled;
    });
  }

  function showPreviewError(message) {
    preview.dataset.state = "error";
    previewError.textContent = message;
    previewCaption.textContent = `Cannot pin the frame at ${formatTime(current)}.`;
    setFrameActionsEnabled(false);
  }

  function schedulePreview() {
    clearTimeout(previewTimer);
    preview.dataset.state = "loading";
    previewTimer = setTimeout(loadPreview, PREVIEW_DELAY_MS);
  }

  async function loadPreview() {
    const seq = ++previewSeq;
    const t = current;
    const url = `${config.previewUrl}?t=${t.toFixed(3)}`;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "image/jpeg" } });
      if (seq !== previewSeq) return;
      if (!response.ok) {
        let message = `The preview failed (HTTP ${response.status}).`;
        try {
          message = (await response.json()).error.message || message;
        } catch (_) { /* not our JSON error body */ }
        if (seq === previewSeq) showPreviewError(message);
        return;
      }
      const blob = await response.blob();
      if (seq !== previewSeq) return;
      if (previewObjectUrl) URL.revokeObjectURL(previewObjectUrl);
      previewObjectUrl = URL.createObjectURL(blob);
      previewImage.src = previewObjectUrl;
      const width = response.headers.get("X-Frame-Width");
      const height = response.headers.get("X-Frame-Height");
      const index = response.headers.get("X-Frame-Index");
      previewError.textContent = "";
      previewCaption.textContent = `Will be stored as this ${width}×${height} JPEG · ${formatTime(t)} · frame ${index}`;
      preview.dataset.t = t.toFixed(3);
      preview.dataset.frame = index;
      preview.dataset.state = "ready";
      setFrameActionsEnabled(true);
    } catch (error) {
      if (seq === previewSeq) showPreviewError(`The preview could not be loaded: ${error.message}`);
    }
  }

  // --- Events -----------------------------------------------------------------------------------------------

  scrubber.addEventListener("input", () => {
    video.pause();
    seek(parseFloat(scrubber.value));
  });
  stamp.addEventListener("change", () => {
    video.pause();
    seek(parseFloat(stamp.value));
  });
  panel.querySelectorAll("[data-step]").forEach((button) => {
    button.addEventListener("click", () => step(button.dataset.step, Number(button.dataset.amount)));
  });
  panel.querySelectorAll(".pin-candidate").forEach((button) => {
    button.addEventListener("click", () => {
      video.pause();
      panel.querySelectorAll(".pin-candidate.is-current").forEach((b) => b.classList.remove("is-current"));
      button.classList.add("is-current");
      seek(parseFloat(button.dataset.seconds));
    });
  });
  playButton.addEventListener("click", togglePlay);

  video.addEventListener("loadedmetadata", () => {
    video.currentTime = current;
  });
  video.addEventListener("timeupdate", () => {
    if (!video.paused) show(video.currentTime);
  });
  video.addEventListener("play", () => {
    playButton.textContent = "❚❚";
    playButton.setAttribute("aria-label", "Pause");
  });
  video.addEventListener("pause", () => {
    playButton.textContent = "▶";
    playButton.setAttribute("aria-label", "Play");
    // Settle on a whole millisecond so the video, the readout and the stored frame agree.
    if (Math.abs(video.currentTime - current) > 0.0005) seek(video.currentTime);
  });
  video.addEventListener("click", togglePlay);

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target.matches("input:not([type=range]), textarea, select, [contenteditable]");
    if (typing || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      const direction = event.key === "ArrowLeft" ? -1 : 1;
      step(event.shiftKey ? "second" : "frame", direction);
    } else if (event.key === " " && !target.matches("button, a")) {
      event.preventDefault();
      togglePlay();
    }
  });

  form.addEventListener("submit", (event) => {
    const submitter = event.submitter;
    if (!submitter) return;
    stamp.value = current.toFixed(3);
    submitter.classList.add("is-busy");
    // After the browser has read the form (the clicked button's value included), stop double submissions.
    setTimeout(() => form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; }), 0);
  });

  show(current);
})();
