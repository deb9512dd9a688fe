// Loads the configured captcha widget (reCAPTCHA v2/v3, hCaptcha, Turnstile) without inline script.
"use strict";
(function () {
  var SCRIPTS = {
    "recaptcha": "https://www.google.com/recaptcha/api.js",
    "recaptcha-v3": "https://www.google.com/recaptcha/api.js?render=",
    "hcaptcha": "https://js.hcaptcha.com/1/api.js",
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/api.js"
  };
  var CLASSES = { "recaptcha": "g-recaptcha", "hcaptcha": "h-captcha", "turnstile": "cf-turnstile" };
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("captcha");
    if (!box) { return; }
    var provider = box.getAttribute("data-provider");
    var key = box.getAttribute("data-sitekey");
    var script = document.createElement("script");
    script.async = true;
    if (provider === "recaptcha-v3") {
      script.src = SCRIPTS[provider] + encodeURIComponent(key);
      var form = document.getElementById("signup-form");
      var field = document.createElement("input");
      field.type = "hidden";
      field.name = "g-recaptcha-response";
      form.appendChild(field);
      form.addEventListener("submit", function (event) {
        if (field.value) { return; }
        event.preventDefault();
        window.grecaptcha.ready(function () {
          window.grecaptcha.execute(key, { action: "signup" }).then(function (token) {
            field.value = token;
            form.submit();
          });
        });
      });
    } else {
      box.className = CLASSES[provider] || "";
      box.setAttribute("data-sitekey", key);
      script.src = SCRIPTS[provider];
    }
    document.head.appendChild(script);
  });
})();
