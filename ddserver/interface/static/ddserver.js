// ddserver's progressive enhancements. Every function of the site works without this file.
"use strict";
(function () {
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.querySelector(button.getAttribute("data-copy"));
        if (!field) { return; }
        var done = function () {
          var label = button.textContent;
          button.textContent = "✓";
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
        } else {
          field.select();
          try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
        }
      });
    });
  }

  function labelCheck() {
    var label = document.getElementById("f-label");
    var zone = document.getElementById("f-zone");
    var status = document.getElementById("label-status");
    if (!label || !zone || !status) { return; }
    var timer = null;
    var check = function () {
      if (!label.value.trim()) { status.textContent = ""; return; }
      var url = label.getAttribute("data-check-url") + "?zone=" + encodeURIComponent(zone.value) +
        "&label=" + encodeURIComponent(label.value);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          status.textContent = answer.message;
          status.className = "small " + (answer.ok ? "text-success" : "text-danger");
        })
        .catch(function () { status.textContent = ""; });
    };
    var later = function () { clearTimeout(timer); timer = setTimeout(check, 250); };
    label.addEventListener("input", later);
    zone.addEventListener("change", later);
  }

  function addresses() {
    var box = document.getElementById("addresses");
    if (!box) { return; }
    ["ipv4", "ipv6"].forEach(function (family) {
      var url = box.getAttribute("data-" + family + "-url");
      if (!url) { return; }
      fetch(url, { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          if (answer.family !== family) { return; }
          document.getElementById(family).textContent = answer.address;
          document.getElementById(family + "-reverse").textContent = answer.reverse || "";
        })
        .catch(function () { /* this family is not available to the visitor */ });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    copyButtons();
    labelCheck();
    addresses();
  });
})();
