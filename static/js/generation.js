/* Generation pages: live job status, and the cost of the request before it is spent. */
(function () {
  "use strict";

  var job = document.getElementById("job");
  // Whether a job is finished comes from the server (data-finished, the API's `finished`): no status list here.
  if (job && job.dataset.finished === "false") {
    var delay = 1500;
    var poll = function () {
      fetch(job.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          if (data.finished) { window.location.reload(); return; }
          var fill = job.querySelector(".progress__fill");
          if (fill) { fill.style.width = (data.progress || 0) + "%"; }
          var message = job.querySelector('[data-role="message"]');
          if (message) {
            message.textContent = data.queue_position !== null && data.queue_position !== undefined
              ? "In the provider's queue, position " + data.queue_position : data.status + "…";
          }
          delay = Math.min(delay * 1.3, 8000);
          window.setTimeout(poll, delay);
        })
        .catch(function () { delay = Math.min(delay * 2, 15000); window.setTimeout(poll, delay); });
    };
    window.setTimeout(poll, delay);
  }

  var form = document.getElementById("generate-form");
  if (form) {
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var quoted = 0;  // the latest quote asked for
    var checked = function (name) { return Boolean(form.elements[name] && form.elements[name].checked); };
    var quote = function () {
      // true: the pinned characters asked for; false: no locks at all; null: the story's default.
      var usePins = checked("with_pins") ? true : (checked("without_pins") ? false : null);
      var body = {
        story_id: Number(form.dataset.storyId),
        prompt: form.elements.prompt.value || "scene",
        duration: Number(form.elements.duration.value),
        aspect_ratio: form.elements.aspect_ratio.value,
        use_pins: usePins,
        with_sound: checked("with_sound")
      };
      if (form.elements.character_id) { body.character_id = form.elements.character_id.value; }
      if (form.elements.model_id && form.elements.model_id.value) { body.model_id = form.elements.model_id.value; }
      if (form.elements.video_element_pin && form.elements.video_element_pin.value) {
        body.video_element_pin = Number(form.elements.video_element_pin.value);
      }
      // Multipart, as the form posts: the style images picked and uploaded are checked and budgeted by the quote.
      var sent = new FormData();
      Object.keys(body).forEach(function (key) { if (body[key] !== null) { sent.append(key, body[key]); } });
      form.querySelectorAll("input[name=style_reference_kinds]:checked").forEach(function (box) {
        sent.append("style_reference_kinds", box.value);
      });
      var files = form.elements.style_images && form.elements.style_images.files;
      Array.prototype.forEach.call(files || [], function (file) { sent.append("style_images", file); });
      var asked = ++quoted;
      // Every price comes from the server's quote (the same one the job is created with): none is kept here.
      fetch("/api/v1/generate/quote", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, Accept: "application/json" },
        body: sent
      }).then(function (r) {
        return r.json().then(function (data) { return { ok: r.ok, data: data }; }, function () { return { ok: false, data: null }; });
      }).then(function (answer) {
        if (asked !== quoted) { return; }  // a later change is being quoted: its answer decides
        var summary = form.querySelector('[data-role="summary"]');
        var data = answer.data;
        if (!answer.ok) {
          // Refused before spending (a model of another mode, a length it does not make): say why, price nothing.
          form.querySelector('[data-role="cost"]').textContent = "—";
          if (summary) {
            summary.textContent = data && data.error ? data.error.message : "This request cannot be quoted now.";
            summary.dataset.refused = "true";
          }
          return;
        }
        form.querySelector('[data-role="cost"]').textContent = "$" + data.cost_usd;
        form.querySelector('[data-role="mode"]').textContent = data.mode;
        form.querySelector('[data-role="model"]').textContent = data.model;
        if (summary) { summary.textContent = data.summary; delete summary.dataset.refused; }
        // The pins this request would leave out, and why.
        var leftOut = document.querySelector('[data-role="left-out-list"]');
        if (leftOut) {
          leftOut.textContent = "";
          (data.left_out_elements || []).forEach(function (left) {
            var line = document.createElement("p");
            line.className = "small form-error";
            line.dataset.role = "left-out";
            line.textContent = left.reason;
            leftOut.appendChild(line);
          });
        }
        // What goes as a video (the pin's source clip), said before spending.
        var video = document.querySelector('[data-role="video-element"]');
        if (video) { video.textContent = data.video_element ? data.video_element.text : ""; }
        // The style images that do not fit beside the pins, and why (pins come first).
        var leftOutStyles = document.querySelector('[data-role="left-out-styles"]');
        if (leftOutStyles) {
          leftOutStyles.textContent = "";
          (data.left_out_style_references || []).forEach(function (left) {
            var line = document.createElement("p");
            line.className = "small form-error";
            line.dataset.role = "left-out-style";
            line.textContent = left.reason;
            leftOutStyles.appendChild(line);
          });
        }
        // The offer of the pinned characters quotes them for the duration picked, beside this request's cost.
        var offer = document.querySelector('[data-role="reference-cost"]');
        if (offer && data.reference_cost_usd) {
          offer.textContent = "$" + data.reference_cost_usd + " for " + body.duration + " s, instead of $" + data.would_cost_usd;
        }
      });
    };
    // The banner names the character picked (its page and model sheet ride on the option).
    var showCharacter = function () {
      var select = form.elements.character_id;
      var link = document.querySelector('[data-role="character-link"]');
      if (!select || !link) { return; }
      var option = select.options[select.selectedIndex];
      link.textContent = option.dataset.name;
      link.href = option.dataset.url;
      var sheet = document.querySelector('[data-role="character-sheet"]');
      if (sheet) {
        sheet.hidden = !option.dataset.sheet;
        if (option.dataset.sheet) { sheet.src = option.dataset.sheet; }
        sheet.alt = "Model sheet of " + option.dataset.name;
      }
    };
    ["duration", "aspect_ratio", "model_id", "without_pins", "with_pins", "character_id", "with_sound", "video_element_pin", "style_images"].forEach(function (name) {
      if (form.elements[name]) { form.elements[name].addEventListener("change", quote); }
    });
    form.querySelectorAll("input[name=style_reference_kinds]").forEach(function (box) { box.addEventListener("change", quote); });
    if (form.elements.character_id) { form.elements.character_id.addEventListener("change", showCharacter); }
  }
})();
