/* Mark a character that is not a face, on the clip page.
 *
 * Pick a frame (a candidate's time, or wherever the video is paused), drag a box over it, send it to
 * POST /api/v1/clips/<id>/marks (session auth with the page's CSRF token). The box is sent in pixels of the
 * original frame. Then each job of the list polls GET /api/v1/marks/<id> and shows its progress; when one is
 * done the page reloads so the "Who is who" rows show the character. A finished or failed mark can be run
 * again (POST /api/v1/marks/<id>/rerun).
 */
(function () {
  "use strict";

  var panel = document.querySelector('[data-role="mark-panel"]');
  if (!panel) return;
  var video = document.querySelector('[data-role="player"]');
  var canvas = panel.querySelector('[data-role="mark-canvas"]');
  var form = panel.querySelector('[data-role="mark-form"]');
  var submit = panel.querySelector('[data-role="mark-submit"]');
  var boxLabel = panel.querySelector('[data-role="mark-box"]');
  var errorBox = panel.querySelector('[data-role="mark-error"]');
  var timeLabel = panel.querySelector('[data-role="mark-time"]');
  var width = Number(panel.dataset.width), height = Number(panel.dataset.height);
  var context = canvas.getContext("2d");
  var still = document.createElement("canvas");
  var seconds = null, box = null, start = null;
  var LABELS = { queued: "Queued", running: "Running", done: "Done", failed: "Failed" };

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function draw() {
    context.drawImage(still, 0, 0);
    if (!box) return;
    var sx = canvas.width / width, sy = canvas.height / height;
    context.lineWidth = Math.max(2, canvas.width / 300);
    context.strokeStyle = "#f59e0b";
    context.strokeRect(box.x * sx, box.y * sy, box.width * sx, box.height * sy);
  }

  function grab() {
    // The video's frame as it is shown now; the box is kept in the original frame's pixels.
    still.width = canvas.width = video.videoWidth || width;
    still.height = canvas.height = video.videoHeight || height;
    still.getContext("2d").drawImage(video, 0, 0, still.width, still.height);
    seconds = Math.round(video.currentTime * 1000) / 1000;
    timeLabel.textContent = "Frame at " + seconds.toFixed(2) + " s";
    box = null;
    canvas.hidden = form.hidden = false;
    submit.disabled = true;
    boxLabel.textContent = "Drag a box over the frame.";
    draw();
  }

  function seekAndGrab() {
    var wanted = panel.querySelector('[data-role="mark-frame"]').value;
    video.pause();
    if (wanted === "" || Math.abs(video.currentTime - Number(wanted)) < 0.001) {
      if (video.readyState >= 2) grab(); else video.addEventListener("loadeddata", grab, { once: true });
      return;
    }
    video.addEventListener("seeked", grab, { once: true });
    video.currentTime = Number(wanted);
  }

  function point(event) {
    var rect = canvas.getBoundingClientRect();
    var x = (event.clientX - rect.left) / rect.width * width;
    var y = (event.clientY - rect.top) / rect.height * height;
    return { x: Math.max(0, Math.min(width, x)), y: Math.max(0, Math.min(height, y)) };
  }

  canvas.addEventListener("pointerdown", function (event) {
    start = point(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!start) return;
    var p = point(event);
    box = {
      x: Math.round(Math.min(start.x, p.x)), y: Math.round(Math.min(start.y, p.y)),
      width: Math.round(Math.abs(p.x - start.x)), height: Math.round(Math.abs(p.y - start.y)),
    };
    draw();
  });
  canvas.addEventListener("pointerup", function () {
    start = null;
    var ok = box && box.width >= 16 && box.height >= 16;
    submit.disabled = !ok;
    boxLabel.textContent = ok ? box.width + " × " + box.height + " px at " + box.x + ", " + box.y
      : "Drag a bigger box (at least 16 px a side).";
  });

  panel.querySelector('[data-role="mark-grab"]').addEventListener("click", seekAndGrab);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!box || seconds === null) return;
    showError("");
    submit.disabled = true;
    var groupId = form.elements.group_id.value;
    fetch(panel.dataset.apiUrl, {
      method: "POST", credentials: "same-origin",
      headers: {
        "Content-Type": "application/json", Accept: "application/json",
        "X-CSRFToken": form.querySelector("input[name=csrfmiddlewaretoken]").value,
      },
      body: JSON.stringify({
        seconds: seconds, box: box, label: form.elements.label.value,
        group_id: groupId ? Number(groupId) : null,
      }),
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (result) {
        if (!result.ok) {
          submit.disabled = false;
          showError((result.data.error && result.data.error.message) || "The mark was not accepted.");
          return;
        }
        var item = document.createElement("li");
        item.dataset.role = "mark-job";
        item.dataset.markUrl = "/api/v1/marks/" + result.data.mark.mark_id;
        item.dataset.status = result.data.mark.status;
        item.innerHTML = '<span></span> <span class="status" data-role="mark-status"></span> ' +
          '<progress max="100" value="0" data-role="mark-progress"></progress> ' +
          '<span class="small muted" data-role="mark-summary"></span>';
        item.firstChild.textContent = "Mark at " + seconds.toFixed(1) + " s · " +
          (result.data.group ? result.data.group.label : "") + ":";
        panel.querySelector('[data-role="mark-jobs"]').prepend(item);
        show(item, result.data.mark);
        if (result.data.mark.status === "done") window.location.reload(); // run at once (no separate worker)
        else watch(item);
      })
      .catch(function () {
        submit.disabled = false;
        showError("The server could not be reached; try again.");
      });
  });

  function show(item, mark) {
    var status = item.querySelector('[data-role="mark-status"]');
    status.textContent = LABELS[mark.status] || mark.status;
    status.className = "status status--" + mark.status;
    item.querySelector('[data-role="mark-progress"]').value = mark.progress;
    var summary = item.querySelector('[data-role="mark-summary"]');
    if (mark.status === "failed") summary.textContent = mark.error_message;
    else if (mark.status === "done") {
      summary.textContent = "seen in " + mark.followed_samples + " sampled frames of its shot, found in " +
        mark.found_samples + " sampled frames of the " + mark.clips_searched + " other clips searched";
    } else summary.textContent = mark.progress + "%";
    item.dataset.status = mark.status;
  }

  function watch(item) {
    if (item.dataset.status !== "queued" && item.dataset.status !== "running") return;
    window.setTimeout(function () {
      fetch(item.dataset.markUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          show(item, data.mark);
          if (data.mark.status === "done") window.location.reload();
          else watch(item);
        })
        .catch(function () { watch(item); });
    }, 1500);
  }

  // Run a finished or failed mark again (POST /api/v1/marks/<id>/rerun; 409 while it runs).
  panel.addEventListener("click", function (event) {
    var button = event.target.closest('[data-role="mark-rerun"]');
    if (!button) return;
    var item = button.closest('[data-role="mark-job"]');
    showError("");
    button.disabled = true;
    fetch(item.dataset.markUrl + "/rerun", {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": form.querySelector("input[name=csrfmiddlewaretoken]").value },
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (result) {
        if (!result.ok) {
          button.disabled = false;
          showError((result.data.error && result.data.error.message) || "The mark could not be run again.");
          return;
        }
        button.remove();
        show(item, result.data.mark);
        if (result.data.mark.status === "done") window.location.reload(); // run at once (no separate worker)
        else watch(item);
      })
      .catch(function () {
        button.disabled = false;
        showError("The server could not be reached; try again.");
      });
  });

  Array.prototype.forEach.call(panel.querySelectorAll('[data-role="mark-job"]'), watch);
})();
