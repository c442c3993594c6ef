/* Voting pages: vote countdowns, the frame picker and the style-description counter.
 *
 * Everything here is an enhancement: the server renders the time left, the picked frames (with
 * their order) and the character count, and the forms work without JavaScript.
 */
(function () {
  "use strict";

  // --- Countdown: "2d 4h" (from 48 h), "23h 12m", "4m 05s", as the server renders it -----------
  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function timeLeft(ms) {
    // Whole seconds rounded up, so the display reads "ended" exactly when voting closes.
    var seconds = Math.max(0, Math.ceil(ms / 1000));
    if (seconds === 0) return "ended";
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    if (hours >= 48) return Math.floor(hours / 24) + "d " + (hours % 24) + "h";
    if (hours) return hours + "h " + pad(minutes) + "m";
    return minutes + "m " + pad(seconds % 60) + "s";
  }

  function startCountdown(el) {
    // Count from the server's remaining time, not the end date, so a wrong client clock does not matter.
    var endsAt = Date.now() + Number(el.dataset.remainingMs || 0);
    var session = el.closest("[data-session]");
    function tick() {
      var remaining = endsAt - Date.now();
      el.textContent = timeLeft(remaining);
      if (remaining > 0) {
        window.setTimeout(tick, remaining > 3600000 ? 30000 : 1000);
        return;
      }
      var box = el.closest(".countdown");
      if (box) box.classList.add("countdown--ended");
      if (!session) return;
      session.querySelectorAll(".entry__vote button").forEach(function (button) {
        button.disabled = true;
        button.textContent = "Voting has ended";
      });
    }
    tick();
  }

  document.querySelectorAll("[data-countdown]").forEach(startCountdown);

  // --- Frame picker: keeps the pick order, shows the count, stops at the maximum --------------
  function framePicker(form) {
    var max = Number(form.dataset.maxFrames || 10);
    var orderInput = form.querySelector('[data-role="frame-order"]');
    var countLabel = form.querySelector('[data-role="pick-count"]');
    var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="frame_ids"]'));
    var order = (orderInput.value || "").split(",").filter(Boolean);
    // Frames checked without a recorded order (e.g. restored by the browser) join at the end.
    boxes.forEach(function (box) {
      if (box.checked && order.indexOf(box.value) === -1) order.push(box.value);
    });
    order = order.filter(function (id) {
      return boxes.some(function (box) { return box.value === id && box.checked; });
    });

    function render() {
      boxes.forEach(function (box) {
        var tile = box.closest(".pick");
        var position = order.indexOf(box.value);
        tile.classList.toggle("is-picked", box.checked);
        tile.querySelector('[data-role="order"]').textContent = position === -1 ? "" : String(position + 1);
        var full = order.length >= max && !box.checked;
        box.disabled = full;
        tile.classList.toggle("is-disabled", full);
      });
      orderInput.value = order.join(",");
      countLabel.textContent = String(order.length);
      countLabel.parentNode.classList.toggle("is-full", order.length >= max);
    }

    boxes.forEach(function (box) {
      box.addEventListener("change", function () {
        var at = order.indexOf(box.value);
        if (box.checked && at === -1) order.push(box.value);
        if (!box.checked && at !== -1) order.splice(at, 1);
        render();
      });
    });
    render();
  }

  document.querySelectorAll("form[data-frame-picker]").forEach(framePicker);

  // --- Live character counter ---------------------------------------------------------------
  document.querySelectorAll("textarea[data-counter-max]").forEach(function (area) {
    var field = area.closest(".field");
    var counter = field && field.querySelector('[data-role="char-counter"]');
    if (!counter) return;
    var count = counter.querySelector('[data-role="char-count"]');
    var max = Number(area.dataset.counterMax);
    function update() {
      var length = area.value.length;
      count.textContent = String(length);
      counter.classList.toggle("is-near", length >= max * 0.9 && length <= max);
      counter.classList.toggle("is-over", length > max);
    }
    area.addEventListener("input", update);
    update();
  });

  // --- Forms: confirm a withdrawal, show that a submit is on its way ---------------------------
  document.querySelectorAll(".voting form, form.submission-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var button = form.querySelector("button[type=submit]");
      if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      if (!button || !button.dataset.busyLabel) return;
      // Let the submission start before the button changes, so the form is sent as it was.
      window.setTimeout(function () {
        button.disabled = true;
        button.textContent = button.dataset.busyLabel;
      }, 0);
    });
  });
})();
