/* Live extraction progress for clips on story and clip pages.
 *
 * Each clip section still being processed polls GET /api/v1/clips/<id> (session auth, same origin)
 * and moves its progress bar. When the clip is ready or failed, the section is swapped for a fresh
 * server-rendered copy (or the whole page reloads on a clip page, whose chart depends on it).
 * If the API cannot be reached, the section is refreshed from the page's HTML instead.
 */
(function () {
  "use strict";

  // Which statuses are unfinished, their labels and the message all come from the server
  // (data-finished on the section, `finished`, `status_label` and `message` in the API): no copy here.
  var BASE_DELAY = 1200;
  var MAX_DELAY = 10000;

  function q(section, role) {
    return section.querySelector('[data-role="' + role + '"]');
  }

  function showProgress(section, data) {
    var status = data.status;
    var badge = q(section, "status");
    if (badge && data.status_label) {
      badge.textContent = data.status_label;
      badge.className = "status status--" + status;
    }
    var percent = Math.max(0, Math.min(100, Math.round(Number(data.progress) || 0)));
    var bar = section.querySelector(".progress");
    if (bar) {
      bar.setAttribute("aria-valuenow", String(percent));
      bar.querySelector(".progress__fill").style.width = percent + "%";
    }
    var text = data.message || "";
    var message = q(section, "message");
    if (message && text) message.textContent = text;
    var percentLabel = q(section, "percent");
    if (percentLabel) {
      percentLabel.textContent = percent + "%";
      percentLabel.hidden = /\d\s*%/.test(text); // the message already says how far it is
    }
    section.dataset.status = status;
    section.dataset.finished = data.finished ? "true" : "false";
  }

  function refresh(section) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById(section.id);
        var finished = fresh && fresh.dataset.finished === "true";
        if (!fresh || (finished && section.dataset.refresh === "page")) {
          window.location.reload();
          return null;
        }
        section.replaceWith(fresh);
        return fresh;
      });
  }

  function watch(section, delay) {
    if (section.dataset.finished === "true") return;
    window.setTimeout(function () {
      if (!section.isConnected) return;
      if (document.hidden) {
        watch(section, delay);
        return;
      }
      fetch(section.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          showProgress(section, data);
          if (!data.finished) {
            watch(section, BASE_DELAY);
          } else {
            return refresh(section);
          }
        })
        .catch(function () {
          // The API is unreachable or refused us: read the state from the page instead, and back off.
          refresh(section)
            .then(function (fresh) {
              if (fresh) watch(fresh, Math.min(delay * 2, MAX_DELAY));
            })
            .catch(function () {
              watch(section, Math.min(delay * 2, MAX_DELAY));
            });
        });
    }, delay);
  }

  function disableOnSubmit(form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (!button || !button.dataset.busyLabel) return;
      // Let the submission start before the button changes, so its value is still sent.
      window.setTimeout(function () {
        button.disabled = true;
        button.textContent = button.dataset.busyLabel;
        form.classList.add("is-busy");
      }, 0);
    });
  }

  document.querySelectorAll("[data-clip-id][data-status-url]").forEach(function (section) {
    watch(section, BASE_DELAY);
  });
  document.querySelectorAll("form.upload-form").forEach(disableOnSubmit);
})();
