// The audit explorer's script and style, served by Baton itself (/audit/assets/*) on every runtime
// (Node and Workers alike, so no file is read at run time). Plain browser JavaScript, no build step,
// nothing inline in the page: the explorer's CSP allows only 'self'.

/** /audit/assets/explorer.js */
export const explorerJs = String.raw`// The audit explorer's script (served as /audit/assets/explorer.js under a CSP of 'self' only).
// Plain browser JavaScript: it reads the audit API with the session cookie and draws the results.
(function () {
  'use strict';
  var body = document.body;
  var csrf = body.dataset.csrf || '';
  var statusBox = document.getElementById('status');
  var form = document.getElementById('search-form');
  var results = document.getElementById('results');
  var older = document.getElementById('older');
  var exportLink = document.getElementById('export');
  var live = document.getElementById('live');
  var actionSection = document.getElementById('action');
  var actionHeading = document.getElementById('action-heading');
  var actionBody = document.getElementById('action-body');
  var revokeButton = document.getElementById('revoke');
  var logBody = document.getElementById('log-body');
  var verifyButton = document.getElementById('verify');
  var state = { next: null, newest: 0, query: '', action: null, rows: null };

  function say(text) {
    statusBox.textContent = text;
  }

  /** An element with attributes and children (strings become text, never HTML). */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }

  function getJson(url) {
    return fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function (r) {
      return r.text().then(function (text) {
        var parsed = null;
        try {
          parsed = text === '' ? null : JSON.parse(text);
        } catch (e) {
          parsed = null;
        }
        if (r.status === 401) throw new Error('Your session has ended. Reload the page to sign in again.');
        return { status: r.status, body: parsed };
      });
    });
  }

  function problem(answer) {
    return (answer.body && answer.body.error_description) || 'The request failed (HTTP ' + answer.status + ').';
  }

  function verification(verified) {
    return verified
      ? el('span', { class: 'ok', text: 'verified' })
      : el('strong', { class: 'bad', text: 'TAMPERED: does not verify' });
  }

  function filterQuery() {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (input) {
      if (!input.name || input.value === '') return;
      var value = input.value.trim();
      if (input.type === 'datetime-local') {
        var at = new Date(value);
        if (isNaN(at.getTime())) return;
        value = at.toISOString();
      }
      if (value !== '') params.set(input.name, value);
    });
    return params.toString();
  }

  function actorsOf(entry) {
    return Array.isArray(entry.actor_chain) ? entry.actor_chain.slice().reverse().join(' → ') : '';
  }

  function row(item) {
    var e = item.entry || {};
    var action = typeof e.action_id === 'string' && e.action_id !== ''
      ? el('a', { href: '#action=' + encodeURIComponent(e.action_id), text: e.action_id })
      : '';
    return el('tr', { 'data-seq': String(item.seq) }, [
      el('td', { text: String(item.seq) }),
      el('td', { text: e.time || '' }),
      el('td', { text: e.type || '(unreadable entry)' }),
      el('td', { text: e.decision || '' }),
      el('td', { text: e.user || '' }),
      el('td', { text: actorsOf(e) }),
      el('td', { text: e.client || '' }),
      el('td', {}, [action]),
      el('td', {}, [verification(item.verified)]),
    ]);
  }

  function table() {
    var rows = el('tbody');
    var t = el('table', {}, [
      el('caption', { text: 'Entries, newest first' }),
      el('thead', {}, [
        el('tr', {}, ['Seq', 'Time', 'Type', 'Decision', 'User', 'Actors', 'Client', 'Action', 'Verification'].map(function (h) {
          return el('th', { scope: 'col', text: h });
        })),
      ]),
      rows,
    ]);
    return { table: t, rows: rows };
  }

  function search(more) {
    var query = more ? state.query : filterQuery();
    var url = '/audit/search?limit=25' + (query ? '&' + query : '') + (more && state.next !== null ? '&before=' + state.next : '');
    return getJson(url).then(function (answer) {
      if (answer.status !== 200) {
        say(problem(answer));
        return;
      }
      if (!more) {
        state.query = query;
        state.newest = 0;
        var built = table();
        state.rows = built.rows;
        results.replaceChildren(built.table);
        exportLink.href = '/audit/entries?from=1&limit=10000' + (query ? '&' + query : '');
      }
      answer.body.entries.forEach(function (item) {
        state.rows.appendChild(row(item));
        if (item.seq > state.newest) state.newest = item.seq;
      });
      state.next = answer.body.next;
      older.hidden = state.next === null;
      var count = state.rows.children.length;
      say(count === 0 ? 'No entry of your tenant matches.' : count + (count === 1 ? ' entry' : ' entries') + ' shown.');
    }).catch(function (error) {
      say(error.message);
    });
  }

  function poll() {
    if (!live.checked || state.rows === null) return;
    var url = '/audit/search?limit=200&after=' + state.newest + (state.query ? '&' + state.query : '');
    getJson(url).then(function (answer) {
      if (answer.status !== 200 || answer.body.entries.length === 0) return;
      var fresh = answer.body.entries;
      for (var i = fresh.length - 1; i >= 0; i -= 1) {
        state.rows.insertBefore(row(fresh[i]), state.rows.firstChild);
        if (fresh[i].seq > state.newest) state.newest = fresh[i].seq;
      }
      say(fresh.length + (fresh.length === 1 ? ' new entry' : ' new entries') + ' arrived.');
    }).catch(function () {});
  }

  var svgNs = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    var node = document.createElementNS(svgNs, tag);
    Object.keys(attrs).forEach(function (k) {
      node.setAttribute(k, String(attrs[k]));
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function nodeLabel(n) {
    if (n.kind === 'user') return 'User ' + n.id;
    if (n.kind === 'actor') return n.id;
    return 'Action ' + n.id + ': ' + (n.decision || '?');
  }

  function graph(nodes) {
    var width = 200;
    var gap = 50;
    var g = svg('svg', {
      viewBox: '0 0 ' + (nodes.length * (width + gap) - gap + 10) + ' 90',
      role: 'img',
      'aria-labelledby': 'graph-title graph-text',
      class: 'graph',
    });
    g.appendChild(svg('title', { id: 'graph-title' }, 'Delegation chain'));
    var defs = svg('defs', {});
    var marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto' });
    marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }));
    defs.appendChild(marker);
    g.appendChild(defs);
    nodes.forEach(function (n, i) {
      var x = 5 + i * (width + gap);
      var cls = 'box ' + n.kind + (n.verified === false ? ' tampered' : '') + (n.decision === 'deny' || n.decision === 'refused' ? ' denied' : '');
      g.appendChild(svg('rect', { x: x, y: 15, width: width, height: 60, rx: 6, class: cls }));
      // The box holds a short name; the full chain is in the text alternative below the graph.
      var name = n.kind === 'user' ? 'User ' + n.id : n.kind === 'action' ? 'Action ' + n.id : n.id;
      if (name.length > 24) name = name.slice(0, 23) + '…';
      var sub = n.seq === null ? 'user' : (n.kind === 'action' ? (n.decision || '?') + ', ' : '') + 'entry ' + n.seq;
      g.appendChild(svg('text', { x: x + width / 2, y: 42, 'text-anchor': 'middle', class: 'label' }, name));
      g.appendChild(svg('text', { x: x + width / 2, y: 62, 'text-anchor': 'middle', class: 'sub' },
        sub + (n.verified === false ? ' (TAMPERED)' : '')));
      if (i > 0) g.appendChild(svg('line', { x1: x - gap + 2, y1: 45, x2: x - 2, y2: 45, class: 'edge', 'marker-end': 'url(#arrow)' }));
    });
    return g;
  }

  function graphText(nodes) {
    var parts = nodes.map(nodeLabel);
    return 'Delegation: ' + parts.join(' → ') + '.';
  }

  function hop(n, index) {
    var items = [];
    function item(term, value) {
      items.push(el('dt', { text: term }), el('dd', {}, [value]));
    }
    if (n.kind !== 'user') {
      item('Entry', 'seq ' + n.seq + ', ' + (n.type || '') + (n.time ? ' at ' + n.time : ''));
      item('Decision', n.decision || 'none recorded');
      item('Scope', n.scope.length ? n.scope.join(' ') : 'none');
      item('Authorization details', n.details.length ? el('ul', {}, n.details.map(function (d) { return el('li', { text: d }); })) : 'none');
      item('Audience', n.audience.length ? n.audience.join(', ') : 'none');
      item('Expiry', 'not recorded in the log');
      item('Policies', n.policyIds.length ? n.policyIds.join(', ') : 'none');
      if (n.client) item('Client', n.client);
      if (n.reason) item('Reason', n.reason);
      item('Verification', verification(n.verified));
    } else {
      item('Role', 'the user on whose behalf the chain acts');
    }
    return el('li', {}, [el('h3', { text: (index + 1) + '. ' + nodeLabel(n) }), el('dl', {}, items)]);
  }

  function showAction(actionId) {
    state.action = actionId;
    actionSection.hidden = false;
    actionHeading.textContent = 'Action ' + actionId;
    actionBody.replaceChildren(el('p', { text: 'Loading…' }));
    var revokeResult = document.getElementById('revoke-result');
    if (revokeResult) revokeResult.textContent = '';
    actionHeading.focus();
    return getJson('/audit/trail/' + encodeURIComponent(actionId)).then(function (answer) {
      if (answer.status === 404) {
        actionBody.replaceChildren(el('p', { class: 'error', text: 'No action ' + actionId + ' in your tenant.' }));
        if (revokeButton) revokeButton.hidden = true;
        say('No action ' + actionId + ' in your tenant.');
        return;
      }
      if (answer.status !== 200) {
        actionBody.replaceChildren(el('p', { class: 'error', text: problem(answer) }));
        say(problem(answer));
        return;
      }
      var data = answer.body;
      var bad = data.entries.filter(function (e) { return !e.verified; }).map(function (e) { return e.seq; });
      var entries = el('tbody', {}, data.entries.map(function (e) {
        return el('tr', {}, [
          el('td', { text: String(e.seq) }),
          el('td', { text: (e.entry && e.entry.type) || '(unreadable entry)' }),
          el('td', { text: (e.entry && e.entry.decision) || '' }),
          el('td', {}, [el('code', { class: 'hash', text: e.hash })]),
          el('td', {}, [verification(e.verified)]),
        ]);
      }));
      actionBody.replaceChildren(
        el('p', { class: data.verified ? 'ok' : 'bad' }, [
          data.verified ? 'Every entry of this action verifies.' : 'This action\u2019s entries do not all verify: tampered at seq ' + bad.join(', ') + '.',
        ]),
        el('h3', { text: 'Delegation chain' }),
        el('div', { class: 'graph-wrap' }, [graph(data.nodes)]),
        el('p', { id: 'graph-text', text: graphText(data.nodes) }),
        el('ol', { class: 'hops' }, data.nodes.map(hop)),
        el('table', {}, [
          el('caption', { text: 'Entries of this action' }),
          el('thead', {}, [el('tr', {}, ['Seq', 'Type', 'Decision', 'Hash', 'Verification'].map(function (h) {
            return el('th', { scope: 'col', text: h });
          }))]),
          entries,
        ]),
      );
      if (revokeButton) revokeButton.hidden = false;
      say('Action ' + actionId + ': ' + (data.nodes.length - 1) + ' hops shown' + (data.verified ? '.' : '; some entries are tampered.'));
    }).catch(function (error) {
      say(error.message);
    });
  }

  function loadLog() {
    logBody.replaceChildren(el('p', { text: 'Verifying…' }));
    return Promise.all([getJson('/audit/checkpoint'), getJson('/audit/verify')]).then(function (answers) {
      var checkpoint = answers[0];
      var verdict = answers[1];
      var items = [];
      function item(term, value) {
        items.push(el('dt', { text: term }), el('dd', {}, [value]));
      }
      if (checkpoint.status === 200) {
        var c = checkpoint.body;
        item('Latest signed checkpoint', 'entry ' + c.seq + (c.signed_at ? ', signed ' + c.signed_at : '') + (c.verified ? ', signature verified' : ', signature does NOT verify'));
      } else item('Latest signed checkpoint', 'none signed yet');
      if (verdict.status === 200) {
        var v = verdict.body;
        if (checkpoint.status === 200) item('Entries since', String(Math.max(0, v.to - checkpoint.body.seq)));
        item('Entries in the log', String(v.to));
        if (v.valid) item('Verification run', el('span', { class: 'ok', text: 'valid: entries ' + v.from + '–' + v.to + ' verify' }));
        else item('Verification run', el('strong', { class: 'bad', id: 'tampered', text: 'FAILED: entry ' + v.seq + ' is tampered (' + v.reason + ')' }));
        say(v.valid ? 'Verification run: the log verifies.' : 'Verification run: entry ' + v.seq + ' is tampered.');
      } else item('Verification run', problem(verdict));
      item('Checked at', new Date().toISOString());
      logBody.replaceChildren(el('dl', {}, items));
    }).catch(function (error) {
      logBody.replaceChildren(el('p', { class: 'error', text: error.message }));
    });
  }

  function route() {
    var match = /^#action=(.+)$/.exec(location.hash);
    if (match) {
      var id = decodeURIComponent(match[1]);
      if (id !== state.action) showAction(id);
    } else {
      state.action = null;
      actionSection.hidden = true;
    }
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var action = document.getElementById('f-action').value.trim();
    search(false).then(function () {
      if (action === '') {
        if (state.action !== null) location.hash = '#search';
      } else if (action === state.action) showAction(action);
      else location.hash = '#action=' + encodeURIComponent(action);
    });
  });
  older.addEventListener('click', function () {
    search(true);
  });
  verifyButton.addEventListener('click', loadLog);
  window.addEventListener('hashchange', route);
  if (revokeButton) {
    revokeButton.addEventListener('click', function () {
      var id = state.action;
      if (id === null || !window.confirm('Revoke every token action ' + id + ' reached?')) return;
      fetch('/audit/revoke', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ action_id: id }),
      }).then(function (r) {
        return r.json().then(function (b) {
          var outcome = r.ok ? 'Revoked ' + b.revoked + ' tokens reached by action ' + id + '.' : b.error_description || 'Revocation failed.';
          document.getElementById('revoke-result').textContent = outcome;
          say(outcome);
        });
      }).catch(function (error) {
        say(error.message);
      });
    });
  }
  setInterval(poll, 3000);
  search(false);
  loadLog();
  route();
})();
`;

/** /audit/assets/explorer.css */
export const explorerCss = String.raw`/* The audit explorer's style (served as /audit/assets/explorer.css). Contrast at least 4.5:1 throughout. */
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fff; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .5rem 1.5rem; background: #f2f2f2; border-bottom: 1px solid #595959; }
header p { margin: 0; }
.brand { font-weight: 700; }
nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
main { padding: 0 1.5rem 3rem; max-width: 80rem; }
main.narrow { max-width: 30rem; margin: 2rem auto; }
h1 { font-size: 1.6rem; }
label { display: block; font-weight: 600; margin-top: .6rem; }
label.check { display: inline-block; font-weight: 400; margin-left: 1rem; }
input, select, button { font: inherit; }
input[type="text"], input[type="password"], input[type="datetime-local"], select { padding: .4rem; width: 100%; box-sizing: border-box; border: 1px solid #595959; border-radius: 4px; }
.fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 0 1rem; }
button { min-height: 2.5rem; margin-top: 1rem; padding: .4rem 1rem; border: 1px solid #1a4d8f; border-radius: 4px; background: #1a4d8f; color: #fff; cursor: pointer; }
button.danger { background: #a40000; border-color: #a40000; }
form.inline button { margin: 0; background: #fff; color: #1a4d8f; }
:focus-visible { outline: 3px solid #1a4d8f; outline-offset: 2px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 1; }
.status { padding: .3rem 1.5rem; min-height: 1.5rem; background: #fffbe6; }
table { border-collapse: collapse; margin: 1rem 0; width: 100%; }
caption { text-align: left; font-weight: 600; }
th, td { border: 1px solid #bbb; padding: .25rem .5rem; text-align: left; vertical-align: top; overflow-wrap: break-word; }
code.hash { font-size: .8rem; word-break: break-all; }
.ok { color: #1d6b2f; }
.bad, .error { color: #a40000; font-weight: 700; }
.graph { display: block; width: 100%; max-width: 60rem; height: auto; }
.graph .box { fill: #eef3fa; stroke: #1a4d8f; stroke-width: 2; }
.graph .box.action { fill: #e9f5ec; stroke: #1d6b2f; }
.graph .box.denied, .graph .box.tampered { fill: #fbeaea; stroke: #a40000; }
.graph .label { font-weight: 700; font-size: 14px; fill: #1b1b1b; }
.graph .sub { font-size: 12px; fill: #333; }
.graph .edge { stroke: #1b1b1b; stroke-width: 2; }
.graph .arrowhead { fill: #1b1b1b; }
ol.hops > li { margin-bottom: 1rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
dd ul { margin: 0; padding-left: 1.2rem; }
`;
