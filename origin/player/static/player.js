/* Spillway embed player: follows the room's status.json from the CDN and plays its HLS stream.
 *
 * States (data-mode on #player): loading → waiting (not started) → live → replay (after the end).
 * While live, the transport (data-transport) is "hls" (N s behind) or "webrtc" (a seat in the room, realtime.js):
 * a listener who presses play while status.json shows open seats asks for one; refusal, a full room, ICE or SFU
 * failure keep (or put) it on HLS at once; an HLS listener is promoted when a seat frees. Switches crossfade.
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
  var rtcAudio = $("rtc-audio");
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
  var speakingEl = $("speaking");
  var chaptersEl = $("chapters");
  var chapterList = $("chapter-list");

  var REPLAY_SWITCH_FALLBACK_MS = 30000; // a live listener hears the tail first; switch anyway after this
  var BEHIND_MARGIN_S = 3; // "Go live" shows when this much further behind than the target delay
  // The page keeps a live HLS listener at hls.js's target delay itself (hls.js's own catch-up is off:
  // maxLiveSyncPlaybackRate 1). hls.js speeds up only with more than 1 s buffered and within one target
  // duration of the target; a low-latency room's target (PART-HOLD-BACK, ~0.64 s) never has 1 s buffered,
  // and a listener who fell 1.7 s behind (a start or a stall) stayed there for good (measured: 2.9 s).
  // A low-latency room's target is 3 parts (~0.64 s): the page aims llSlackS further back, so one late part
  // does not empty the buffer (measured, 120 s: 1-4 stalls per listener at +0.2 s; each stall adds to the target).
  var KEEP = { everyMs: 250, startSlackS: 0.5, aboveS: 0.15, settleS: 0.05, minBufferS: 0.3, rate: 1.08,
               fastRate: 1.15, fastAboveS: 1.0, llSlackS: 0.35 };

  var player = {
    mode: "loading",
    engine: null, // "hls.js" | "native"
    hls: null,
    audio: audio,
    status: null,
    latency: null, // seconds behind the live edge (hls.latency), null when unknown
    statusPolls: 0,
    transport: null, // while live: "hls" | "webrtc"
    rtcAudio: rtcAudio,
    seat: null, // the SpillwayRealtime controller (tests: seat.pc(), seat.lease())
    seatResults: [], // every tryJoin outcome, oldest first: "realtime" | "hls:<reason>"
    seatEnds: [], // why seats that were up ended: kicked, ice, lease_ended, …
    seatTimings: [], // performance.now() per attempt: asked, granted, track, live (bench/sfu.py)
    speakers: [], // who "Now speaking" shows (from the stream's timed metadata)
    speakerLog: [], // every change: {at: media time, names}
    chapters: [] // the replay's chapters (chapters.json)
  };
  window.spillway = player;

  var rt = cfg.realtime && typeof window.SpillwayRealtime === "function" ? cfg.realtime : null;
  var userVolume = 1;
  var userMuted = false;
  var levels = { hls: 1, rtc: 0 }; // crossfade gains
  var fadeTimer = null;
  var seatBusy = false;
  var seatRetryAt = 0;
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

  function forwardBuffer() {
    var b = audio.buffered, t = audio.currentTime;
    for (var i = 0; i < b.length; i++) if (b.start(i) <= t + 0.05 && t < b.end(i)) return b.end(i) - t;
    return 0;
  }

  // Pressing play on a live stream plays live: nothing was heard yet, so a start that buffered behind the
  // target (the page sat paused, the first parts came slowly) jumps forward instead of staying late.
  function startAtLive() {
    var hls = player.hls, lat = liveLatency();
    if (!hls || lat === null || hls.liveSyncPosition === null || !isFinite(hls.liveSyncPosition)) return;
    if (lat > targetLatency() + KEEP.startSlackS && hls.liveSyncPosition > audio.currentTime) {
      audio.currentTime = hls.liveSyncPosition;
    }
  }

  // While live on HLS and playing: a little faster (pitch kept) while behind the target with audio buffered,
  // normal speed again at the target or when the buffer runs thin. Far behind (paused, "Go live") is the
  // listener's choice and is left alone.
  var keeping = false; // the rate is ours to set back (a replay's rate is never touched)
  function keepLive() {
    var rate = 1;
    if (player.mode === "live" && player.transport === "hls" && player.hls && !audio.paused && !audio.seeking) {
      var d = player.hls.latestLevelDetails, slack = d && d.partHoldBack ? KEEP.llSlackS : 0;
      var lat = liveLatency(), over = lat === null ? 0 : lat - targetLatency() - slack, fwd = forwardBuffer();
      if (over < BEHIND_MARGIN_S && fwd > KEEP.minBufferS && over > (keeping ? KEEP.settleS : KEEP.aboveS)) {
        rate = over > KEEP.fastAboveS ? KEEP.fastRate : KEEP.rate;
      }
    } else if (!keeping) {
      return;
    }
    keeping = rate !== 1;
    if (audio.playbackRate !== rate) audio.playbackRate = rate;
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
    setTransport("hls");
    seekRow.hidden = true;
    badge.hidden = false;
    delayEl.hidden = false;
    if (!attach(cfg.hlsUrl)) return;
    playBtn.disabled = false;
    setMessage("Live now. Press play to listen.");
  }

  // -- real-time seat ------------------------------------------------------------------------------------

  function fade(toRtc, done) {
    // Both elements play during the crossfade; the one fading out is silenced at the end.
    if (fadeTimer !== null) window.clearInterval(fadeTimer);
    var steps = Math.max(1, Math.round((rt ? rt.crossfadeMs : 300) / 30));
    var i = 0;
    fadeTimer = window.setInterval(function () {
      i += 1;
      var x = Math.min(1, i / steps);
      levels.rtc = toRtc ? x : 1 - x;
      levels.hls = 1 - levels.rtc;
      applyVolume();
      if (x >= 1) {
        window.clearInterval(fadeTimer);
        fadeTimer = null;
        if (done) done();
      }
    }, 30);
  }

  function setTransport(t) {
    player.transport = t;
    if (t) root.setAttribute("data-transport", t);
    else root.removeAttribute("data-transport");
    showDelay();
  }

  function lastTiming() {
    return player.seatTimings[player.seatTimings.length - 1] || {};
  }

  function onRoomTrack(track) {
    lastTiming().track = window.performance.now();
    rtcAudio.srcObject = new MediaStream([track]);
    levels.rtc = 0;
    applyVolume();
    var p = rtcAudio.play();
    var switched = function () {
      lastTiming().live = window.performance.now();
      setTransport("webrtc");
      setMessage("Listening live, in the room.");
      syncPlayButton();
      fade(true, function () { detach(); }); // HLS no longer needed: stop fetching segments
    };
    if (p && typeof p.then === "function") p.then(switched, function () { leaveSeat("autoplay"); });
    else switched();
  }

  function backToHls(reason) {
    // The seat is gone (or never came): HLS at once, fading the room out if it still sounds.
    player.seatEnds.push(reason);
    seatRetryAt = Date.now() + (rt ? rt.retryAfterErrorSeconds * 1000 : 15000);
    if (player.mode !== "live") return;
    if (!player.hls && !audio.getAttribute("src")) attach(cfg.hlsUrl);
    levels.hls = 0;
    applyVolume();
    play();
    setTransport("hls");
    fade(false, function () { rtcAudio.pause(); rtcAudio.srcObject = null; });
  }

  function leaveSeat(reason) {
    if (player.seat) player.seat.leave(reason);
    rtcAudio.pause();
    rtcAudio.srcObject = null;
    levels.hls = 1;
    levels.rtc = 0;
    applyVolume();
    if (player.mode === "live") {
      if (!player.hls && !audio.getAttribute("src")) attach(cfg.hlsUrl);
      setTransport("hls");
    }
    syncPlayButton();
  }

  function maybeSeat(doc) {
    // Ask for a seat when: real-time is on, live, this listener is playing HLS, status says seats are open.
    if (!rt || seatBusy || player.mode !== "live" || player.transport === "webrtc") return;
    if (audio.paused || !doc || !doc.realtime || !doc.realtime.open || !doc.join_url) return;
    if (Date.now() < seatRetryAt) return;
    seatBusy = true;
    player.seatTimings.push({ asked: window.performance.now() });
    if (!player.seat) {
      player.seat = window.SpillwayRealtime({
        iceServers: rt.iceServers,
        onGranted: function () { lastTiming().granted = window.performance.now(); },
        onTrack: onRoomTrack,
        onEnded: function (reason) { backToHls(reason); }
      });
    }
    player.seat.tryJoin(doc.join_url).then(function (result) {
      seatBusy = false;
      player.seatResults.push(result);
      if (result === "realtime") return;
      var reason = result.slice(4);
      if (reason !== "full") seatRetryAt = Date.now() + rt.retryAfterErrorSeconds * 1000;
    });
  }

  // -- replay ----------------------------------------------------------------------------------------------

  function startReplay() {
    pendingReplay = false;
    if (player.transport === "webrtc" || player.seat) leaveSeat("ended");
    setTransport(null);
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
    loadChapters();
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

  // -- timed metadata: who is speaking, chapters -----------------------------------------------------------
  // hls.js puts EXT-X-DATERANGE (one cue per X- attribute, type com.apple.quicktime.HLS) and in-band ID3/emsg
  // (TXXX org.spillway.event = the cue as JSON) on a hidden "metadata" text track. The DATERANGE cue of a turn
  // lasts the turn; the in-band cues are edges (start, end) applied in time order.

  var shownKey = "";
  var pendingKey = null;
  var pendingTimer = null;

  function spillwayEvent(cue) {
    var v = cue.value;
    if (!v || v.key !== "TXXX" || v.info !== "org.spillway.event") return null;
    try { return JSON.parse(v.data); } catch (e) { return null; }
  }

  function currentSpeakers(track, t) {
    var names = {};
    var edges = [];
    var cues = track.cues || [];
    for (var i = 0; i < cues.length; i++) {
      var c = cues[i];
      if (c.startTime > t) continue;
      if (c.value && c.value.key === "X-SPEAKER") {
        if (c.endTime > t) names[c.value.data] = true;
        continue;
      }
      var ev = spillwayEvent(c);
      if (ev && ev.kind === "speaker") edges.push({ at: c.startTime, ev: ev });
    }
    // hls.js's parsed EXT-X-DATERANGEs too: in Chromium it can lose the cues it adds before its metadata
    // <track> has loaded (hls.js 1.7.4), so the playlist's ranges are read from the level details as well.
    var details = player.hls && player.hls.latestLevelDetails;
    var ranges = (details && details.dateRanges) || {};
    Object.keys(ranges).forEach(function (id) {
      var d = ranges[id];
      if (d.class !== "org.spillway.speaker" || !d.attr["X-SPEAKER"]) return;
      var end = d.duration === null ? Infinity : d.startTime + d.duration;
      if (d.startTime <= t && t < end) names[d.attr["X-SPEAKER"]] = true;
    });
    edges.sort(function (a, b) { return a.at - b.at; });
    var inband = {};
    edges.forEach(function (e) {
      if (e.ev.edge === "start") inband[e.ev.id] = e.ev.speaker;
      else delete inband[e.ev.id];
    });
    Object.keys(inband).forEach(function (id) { names[inband[id]] = true; });
    return Object.keys(names).sort();
  }

  function speakingText(names) {
    if (!names.length) return "";
    var list = names.length === 1 ? names[0]
      : names.slice(0, -1).join(", ") + " and " + names[names.length - 1];
    return "Now speaking: " + list;
  }

  function showSpeakers(names) {
    // The element is a polite live region: its text changes only when the set of speakers does, once the
    // new set has held for a moment, so a screen reader announces turns, not every flicker of detection.
    var key = names.join("\n");
    if (key === shownKey) {
      pendingKey = null;
      if (pendingTimer !== null) { window.clearTimeout(pendingTimer); pendingTimer = null; }
      return;
    }
    if (key === pendingKey) return;
    pendingKey = key;
    if (pendingTimer !== null) window.clearTimeout(pendingTimer);
    pendingTimer = window.setTimeout(function () {
      pendingTimer = null;
      pendingKey = null;
      shownKey = key;
      player.speakers = names;
      player.speakerLog.push({ at: audio.currentTime, names: names });
      speakingEl.textContent = speakingText(names);
      speakingEl.hidden = !names.length;
    }, cfg.speakerSettleMs);
  }

  function metadataTrack() {
    for (var i = 0; i < audio.textTracks.length; i++) {
      if (audio.textTracks[i].kind === "metadata") return audio.textTracks[i];
    }
    return null;
  }

  function updateSpeakers() {
    var track = metadataTrack();
    if (player.transport === "webrtc") { showSpeakers([]); return; } // the room itself: no stream metadata
    if (track) showSpeakers(currentSpeakers(track, audio.currentTime));
  }

  audio.textTracks.addEventListener("addtrack", function (e) {
    if (e.track.kind !== "metadata") return;
    if (e.track.mode === "disabled") e.track.mode = "hidden";
    e.track.addEventListener("cuechange", updateSpeakers);
  });

  function chapterButton(ch) {
    var li = document.createElement("li");
    var b = document.createElement("button");
    b.type = "button";
    var at = document.createElement("span");
    at.className = "at";
    at.textContent = formatTime(ch.start);
    b.appendChild(at);
    b.appendChild(document.createTextNode(ch.title));
    b.setAttribute("aria-label", ch.title + ", at " + formatTime(ch.start));
    b.addEventListener("click", function () {
      audio.currentTime = ch.start;
      updateSeek();
      play();
    });
    li.appendChild(b);
    return li;
  }

  function markChapter() {
    var buttons = chapterList.querySelectorAll("button");
    var t = audio.currentTime;
    player.chapters.forEach(function (ch, i) {
      var on = t >= ch.start && t < ch.end;
      if ((buttons[i].getAttribute("aria-current") === "true") !== on) {
        if (on) buttons[i].setAttribute("aria-current", "true");
        else buttons[i].removeAttribute("aria-current");
      }
    });
  }

  function loadChapters() {
    window.fetch(cfg.chaptersUrl, { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        var list = doc && Array.isArray(doc.chapters) ? doc.chapters : [];
        player.chapters = list.filter(function (c) {
          return c && typeof c.title === "string" && isFinite(c.start) && isFinite(c.end);
        });
        chapterList.textContent = "";
        player.chapters.forEach(function (ch) { chapterList.appendChild(chapterButton(ch)); });
        chaptersEl.hidden = !player.chapters.length;
      }, function () { /* no chapters: the list stays hidden */ });
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
      else maybeSeat(doc); // promotion: an HLS listener takes a seat that freed
    } else if (state === "ended") {
      if (player.transport === "webrtc") {
        leaveSeat("ended");
        startReplay();
      } else if (player.mode === "live" && !audio.paused && !audio.ended) {
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
    var playing = player.transport === "webrtc" || (!audio.paused && !audio.ended);
    playBtn.setAttribute("aria-label", playing ? "Pause" : "Play");
    playBtn.setAttribute("data-playing", playing ? "true" : "false");
  }

  function applyVolume() {
    audio.muted = rtcAudio.muted = userMuted;
    audio.volume = userVolume * levels.hls;
    rtcAudio.volume = userVolume * levels.rtc;
  }

  function syncVolume() {
    var muted = userMuted || userVolume === 0;
    muteBtn.setAttribute("aria-pressed", muted ? "true" : "false");
    muteBtn.setAttribute("aria-label", muted ? "Unmute" : "Mute");
    volume.value = String(userMuted ? 0 : userVolume);
    volume.setAttribute("aria-valuetext", Math.round((userMuted ? 0 : userVolume) * 100) + "%");
  }

  playBtn.addEventListener("click", function () {
    if (player.transport === "webrtc") {
      leaveSeat("paused"); // a paused listener gives the seat back
      return;
    }
    if (audio.paused || audio.ended) {
      if (player.mode === "live" && player.transport === "hls") startAtLive();
      play();
      if (player.mode === "live") maybeSeat(player.status);
    } else {
      audio.pause();
    }
  });
  jumpBtn.addEventListener("click", jumpToLive);
  muteBtn.addEventListener("click", function () {
    if (userMuted || userVolume === 0) {
      userMuted = false;
      if (userVolume === 0) userVolume = 0.5;
    } else {
      userMuted = true;
    }
    applyVolume();
    syncVolume();
  });
  volume.addEventListener("input", function () {
    userVolume = +volume.value;
    userMuted = userVolume === 0;
    applyVolume();
    syncVolume();
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
  audio.addEventListener("durationchange", updateSeek);
  audio.addEventListener("timeupdate", function () {
    if (player.mode === "replay") {
      updateSeek();
      if (player.chapters.length) markChapter();
    }
    updateSpeakers(); // in-band edges: the speaker set can change without a cue entering or leaving
  });

  function showDelay() {
    if (player.mode !== "live") return;
    if (player.transport === "webrtc") {
      player.latency = 0;
      delayEl.textContent = "Live";
      jumpBtn.hidden = true;
      badge.classList.remove("behind");
      return;
    }
    var lat = liveLatency();
    player.latency = lat;
    delayEl.textContent = lat === null ? "" : Math.round(lat) + " s behind live";
    var behind = lat !== null && lat > targetLatency() + BEHIND_MARGIN_S;
    jumpBtn.hidden = !behind;
    badge.classList.toggle("behind", behind);
  }

  window.setInterval(showDelay, 500);
  window.setInterval(keepLive, KEEP.everyMs);
  window.addEventListener("pagehide", function () { if (player.seat) player.seat.leave("leave"); });

  syncPlayButton();
  applyVolume();
  syncVolume();
  poll();
})();
