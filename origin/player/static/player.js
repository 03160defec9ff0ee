/* Spillway embed player: follows the room's status.json from the CDN and plays its HLS stream.
 *
 * States (data-mode on #player): loading → waiting (not started) → live → replay (after the end).
 * hls.js plays whenever MediaSource exists (Debian's Chromium answers canPlayType(HLS) with "maybe", so that
 * test alone is not trusted); native HLS only without MediaSource (Safari on iOS). No framework, no build.
 * window.spillway exposes the state for tests and bench/latency.py.
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("spillway-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var root = $("player");
  var audio = $("audio");
  var playBtn = $("play");
  var badge = $("live-badge");
  var delayEl = $("delay");
  var jumpBtn = $("jump-live");
  var muteBtn = $("mute");
  var volume = $("volume");
  var seekRow = $("seek-row");
  var seek = $("seek");
  var timeEl = $("time");
  var message = $("message");
  var download = $("download");
  var titleEl = $("room-title");
  var hostEl = $("room-host");
  var hostName = $("room-host-name");

  var REPLAY_SWITCH_FALLBACK_MS = 30000; // a live listener hears the tail first; switch anyway after this
  var BEHIND_MARGIN_S = 3; // "Go live" shows when this much further behind than the target delay

  var player = {
    mode: "loading",
    engine: null, // "hls.js" | "native"
    hls: null,
    audio: audio,
    status: null,
    latency: null, // seconds behind the live edge (hls.latency), null when unknown
    statusPolls: 0
  };
  window.spillway = player;

  var pendingReplay = false;
  var fallbackTimer = null;
  var userSeeking = false;

  function hlsJsUsable() {
    var mse = !!(window.MediaSource || window.ManagedMediaSource);
    return mse && typeof window.Hls !== "undefined" && window.Hls.isSupported();
  }

  function nativeUsable() {
    return audio.canPlayType("application/vnd.apple.mpegurl") !== "";
  }

  function setMessage(text) {
    if (message.textContent !== text) message.textContent = text;
  }

  function setMode(mode) {
    player.mode = mode;
    root.setAttribute("data-mode", mode);
  }

  function formatTime(s) {
    if (!isFinite(s) || s < 0) s = 0;
    s = Math.floor(s);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = h ? (m < 10 ? "0" + m : "" + m) : "" + m;
    return (h ? h + ":" : "") + mm + ":" + (sec < 10 ? "0" + sec : sec);
  }

  // -- engines ---------------------------------------------------------------------------------------------

  function detach() {
    if (player.hls) {
      player.hls.destroy();
      player.hls = null;
    }
    if (audio.getAttribute("src")) {
      audio.removeAttribute("src");
      audio.load();
    }
    player.engine = null;
  }

  function onHlsError(_event, data) {
    if (!data.fatal || !player.hls) return;
    var hls = player.hls;
    if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) {
      setMessage("Connection lost. Reconnecting…");
      window.setTimeout(function () { if (player.hls === hls) hls.startLoad(); }, 2000);
    } else {
      setMessage("Playback failed. Reload the page to try again.");
    }
  }

  function attach(url) {
    detach();
    if (hlsJsUsable()) {
      var hls = new window.Hls(Object.assign({}, cfg.hlsConfig));
      player.hls = hls;
      player.engine = "hls.js";
      hls.on(window.Hls.Events.ERROR, onHlsError);
      hls.loadSource(url);
      hls.attachMedia(audio);
      return true;
    }
    if (nativeUsable()) {
      player.engine = "native";
      audio.src = url;
      return true;
    }
    setMessage("This browser cannot play the stream. Try a current Chrome, Edge, Firefox or Safari.");
    playBtn.disabled = true;
    return false;
  }

  function play() {
    var p = audio.play();
    if (p && typeof p.catch === "function") {
      p.catch(function () { setMessage("Press play to listen."); });
    }
  }

  // -- live ------------------------------------------------------------------------------------------------

  function liveLatency() {
    if (player.hls) {
      var l = player.hls.latency;
      return l > 0 && isFinite(l) ? l : null;
    }
    if (audio.seekable.length) {
      return Math.max(0, audio.seekable.end(audio.seekable.length - 1) - audio.currentTime);
    }
    return null;
  }

  function targetLatency() {
    var t = player.hls ? player.hls.targetLatency : null;
    return t && isFinite(t) ? t : 6;
  }

  function jumpToLive() {
    var hls = player.hls;
    if (hls && hls.liveSyncPosition !== null && isFinite(hls.liveSyncPosition)) {
      audio.currentTime = hls.liveSyncPosition;
    } else if (audio.seekable.length) {
      audio.currentTime = Math.max(0, audio.seekable.end(audio.seekable.length - 1) - targetLatency());
    }
    play();
  }

  function startLive() {
    setMode("live");
    seekRow.hidden = true;
    badge.hidden = false;
    delayEl.hidden = false;
    if (!attach(cfg.hlsUrl)) return;
    playBtn.disabled = false;
    setMessage("Live now. Press play to listen.");
  }

  // -- replay ----------------------------------------------------------------------------------------------

  function startReplay() {
    pendingReplay = false;
    if (fallbackTimer !== null) {
      window.clearTimeout(fallbackTimer);
      fallbackTimer = null;
    }
    setMode("replay");
    badge.hidden = true;
    delayEl.hidden = true;
    jumpBtn.hidden = true;
    player.latency = null;
    seek.value = "0";
    seek.max = "0";
    if (!attach(cfg.replayUrl)) return;
    seekRow.hidden = false;
    playBtn.disabled = false;
    setMessage("The broadcast has ended. Listen to the replay.");
  }

  function updateSeek() {
    var d = audio.duration;
    if (!isFinite(d) || d <= 0) return;
    var max = Math.floor(d);
    if (seek.max !== String(max)) seek.max = String(max);
    if (!userSeeking) seek.value = String(Math.min(max, Math.floor(audio.currentTime)));
    var label = formatTime(+seek.value) + " of " + formatTime(d);
    seek.setAttribute("aria-valuetext", label);
    timeEl.textContent = formatTime(+seek.value) + " / " + formatTime(d);
  }

  // -- status.json -----------------------------------------------------------------------------------------

  function showRoom(doc) {
    if (typeof doc.title === "string" && doc.title && titleEl.textContent !== doc.title) {
      titleEl.textContent = doc.title;
    }
    if (typeof doc.host === "string") {
      hostName.textContent = doc.host;
      hostEl.hidden = !doc.host;
    }
    if (typeof doc.download_url === "string" && doc.download_url) {
      download.href = doc.download_url;
      download.hidden = false;
    }
  }

  function waiting() {
    setMode("waiting");
    playBtn.disabled = true;
    setMessage("This broadcast has not started yet. It will play here as soon as it does.");
  }

  function onStatus(doc) {
    player.status = doc;
    player.statusPolls += 1;
    if (doc) showRoom(doc);
    var state = doc ? doc.state : "idle";
    if (state === "live") {
      if (player.mode === "loading" || player.mode === "waiting") startLive();
    } else if (state === "ended") {
      if (player.mode === "live" && !audio.paused && !audio.ended) {
        if (!pendingReplay) {
          // Let a live listener hear the last seconds; 'ended' (or the fallback) switches to the replay.
          pendingReplay = true;
          setMessage("The broadcast has ended.");
          fallbackTimer = window.setTimeout(startReplay, REPLAY_SWITCH_FALLBACK_MS);
        }
      } else if (player.mode !== "replay") {
        startReplay();
      }
    } else if (player.mode === "loading") {
      waiting();
    }
  }

  var pollTimer = null;
  var polling = false;

  function nextPollMs() {
    var intervals = cfg.statusPollSeconds;
    var base = intervals[player.mode] || intervals.waiting;
    return base * 1000 * (0.8 + 0.4 * Math.random()); // jitter: a crowd's polls do not line up
  }

  function poll() {
    pollTimer = null;
    polling = true;
    window.fetch(cfg.statusUrl, { cache: "no-cache", credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(onStatus, function () { /* offline for a moment: the next poll retries */ })
      .then(function () {
        polling = false;
        var done = player.mode === "replay" && !download.hidden; // nothing left to learn
        if (!done) pollTimer = window.setTimeout(poll, nextPollMs());
      });
  }

  function pollNow() {
    if (polling) return;
    if (pollTimer !== null) window.clearTimeout(pollTimer);
    poll();
  }

  // -- controls --------------------------------------------------------------------------------------------

  function syncPlayButton() {
    var playing = !audio.paused && !audio.ended;
    playBtn.setAttribute("aria-label", playing ? "Pause" : "Play");
    playBtn.setAttribute("data-playing", playing ? "true" : "false");
  }

  function syncVolume() {
    var muted = audio.muted || audio.volume === 0;
    muteBtn.setAttribute("aria-pressed", muted ? "true" : "false");
    muteBtn.setAttribute("aria-label", muted ? "Unmute" : "Mute");
    volume.value = String(audio.muted ? 0 : audio.volume);
    volume.setAttribute("aria-valuetext", Math.round((audio.muted ? 0 : audio.volume) * 100) + "%");
  }

  playBtn.addEventListener("click", function () {
    if (audio.paused || audio.ended) play();
    else audio.pause();
  });
  jumpBtn.addEventListener("click", jumpToLive);
  muteBtn.addEventListener("click", function () {
    if (audio.muted || audio.volume === 0) {
      audio.muted = false;
      if (audio.volume === 0) audio.volume = 0.5;
    } else {
      audio.muted = true;
    }
  });
  volume.addEventListener("input", function () {
    audio.volume = +volume.value;
    audio.muted = audio.volume === 0;
  });
  seek.addEventListener("input", function () { userSeeking = true; updateSeek(); });
  seek.addEventListener("change", function () {
    userSeeking = false;
    audio.currentTime = +seek.value;
    updateSeek();
  });

  audio.addEventListener("play", syncPlayButton);
  audio.addEventListener("pause", syncPlayButton);
  audio.addEventListener("playing", function () {
    syncPlayButton();
    if (player.mode === "live" && !pendingReplay) setMessage("Listening live.");
    if (player.mode === "replay") setMessage("Playing the replay.");
  });
  audio.addEventListener("ended", function () {
    syncPlayButton();
    if (player.mode === "live" && (pendingReplay || (player.status && player.status.state === "ended"))) {
      startReplay();
    } else if (player.mode === "live") {
      pollNow(); // the live playlist ended (EXT-X-ENDLIST): status.json should say so now
    } else if (player.mode === "replay") {
      setMessage("End of the recording.");
    }
  });
  audio.addEventListener("volumechange", syncVolume);
  audio.addEventListener("durationchange", updateSeek);
  audio.addEventListener("timeupdate", function () { if (player.mode === "replay") updateSeek(); });

  window.setInterval(function () {
    if (player.mode !== "live") return;
    var lat = liveLatency();
    player.latency = lat;
    delayEl.textContent = lat === null ? "" : Math.round(lat) + " s behind live";
    var behind = lat !== null && lat > targetLatency() + BEHIND_MARGIN_S;
    jumpBtn.hidden = !behind;
    badge.classList.toggle("behind", behind);
  }, 500);

  syncPlayButton();
  syncVolume();
  poll();
})();
