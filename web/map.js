// The map: the context graph drawn with Cytoscape.js, following the change stream.
//
// The model (every resource and relation of the graph shown) is kept apart from the drawing:
// a change from the stream updates the model, then `draw` makes the drawing match what the
// filters let through, adding and removing only what differs, so the layout a user is
// looking at stays put. Everything is read from the API with the page's own origin.
'use strict';

(() => {
  // Types drawn only when asked for: there are many of them, and they live inside pods.
  const FOLDED_TYPES = new Set(['Container', 'Process', 'Image', 'Cluster']);
  // Relations drawn as nesting instead of lines (the child's parent in the drawing).
  const NESTING = new Set(['contains', 'runs']);
  const STATUSES = ['running', 'pending', 'restarting', 'failed', 'succeeded'];
  const COLORS = {
    Node: '#6e7781', Pod: '#0969da', Container: '#8250df', Process: '#bf8700',
    Image: '#57606a', Service: '#1a7f37', Namespace: '#6e7781', Deployment: '#bc4c00',
    ReplicaSet: '#cf7a36', StatefulSet: '#bc4c00', DaemonSet: '#bc4c00', Job: '#a475f9',
    CronJob: '#a475f9', ReplicationController: '#cf7a36', Ingress: '#2da44e',
    HorizontalPodAutoscaler: '#9a6700', PersistentVolume: '#4d2d00', PersistentVolumeClaim: '#7d4e00',
  };
  const SHAPES = {
    Pod: 'ellipse', Container: 'round-rectangle', Process: 'rectangle', Image: 'hexagon',
    Service: 'diamond', Ingress: 'triangle', Deployment: 'round-octagon', ReplicaSet: 'octagon',
    StatefulSet: 'round-octagon', DaemonSet: 'round-octagon', Job: 'round-tag', CronJob: 'tag',
    ReplicationController: 'octagon', HorizontalPodAutoscaler: 'vee',
    PersistentVolume: 'barrel', PersistentVolumeClaim: 'barrel',
  };

  const $ = (id) => document.getElementById(id);
  const token = { value: sessionStorage.getItem('cluster-insight-token') };

  // The graph shown: the live one, or one of the past (`at`).
  const live = newModel();
  let shown = live;
  const view = {
    group: 'Node',
    hiddenTypes: new Set(FOLDED_TYPES),
    hiddenNamespaces: new Set(),
    unfolded: new Set(), // resources whose folded neighbours the user asked to see
    revealed: new Set(), // resources the filters hide that the user went to
    selected: null,
    search: null, // the ids the search found, or null
    faded: false, // whether what the search did not find is faded
    pastDiff: null, // when in the past: what differs from the live graph
    marked: false, // whether the drawing marks that difference
  };
  let cy = null;
  let history = null; // {oldestMs} when the master keeps history

  function newModel() {
    return { resources: new Map(), relations: new Map(), edges: new Map(), sequence: null, timestamp: null };
  }
  function relationKey(r) { return r.type + '|' + r.source + '|' + r.target; }
  function addRelation(m, r) {
    const key = relationKey(r);
    m.relations.set(key, r);
    for (const end of [r.source, r.target]) {
      let set = m.edges.get(end);
      if (!set) m.edges.set(end, (set = new Set()));
      set.add(key);
    }
  }
  function removeRelation(m, r) {
    const key = relationKey(r);
    m.relations.delete(key);
    for (const end of [r.source, r.target]) {
      const set = m.edges.get(end);
      if (set) { set.delete(key); if (set.size === 0) m.edges.delete(end); }
    }
  }
  function loadModel(m, graph) {
    m.resources.clear(); m.relations.clear(); m.edges.clear();
    for (const r of graph.resources) m.resources.set(r.id, r);
    for (const r of graph.relations) addRelation(m, r);
    m.sequence = graph.sequence; m.timestamp = graph.timestamp;
  }
  function relationsOf(m, id) {
    const keys = m.edges.get(id);
    return keys ? [...keys].map((k) => m.relations.get(k)) : [];
  }

  // ---- what a resource is: name, namespace, status, label --------------------------------

  function metadata(r) { return (r.properties && r.properties.metadata) || {}; }
  function namespaceOf(m, r, depth = 0) {
    const ns = metadata(r).namespace;
    if (ns) return ns;
    if (r.type === 'Namespace') return metadata(r).name || null;
    // Containers and processes belong to their pod's namespace.
    if ((r.type === 'Container' || r.type === 'Process') && depth < 3) {
      const parent = nestingParent(m, r.id, 'Node');
      const p = parent && m.resources.get(parent);
      if (p) return namespaceOf(m, p, depth + 1);
    }
    return null;
  }
  function nameOf(r) {
    const md = metadata(r);
    if (md.name) return md.name;
    return (r.annotations && r.annotations.label) || r.id.slice(r.id.indexOf(':') + 1);
  }
  function labelOf(m, r) {
    const md = metadata(r);
    switch (r.type) {
      case 'Pod': return (md.namespace ? md.namespace + '/' : '') + md.name;
      case 'Process': {
        const p = r.properties || {};
        const command = String(p.COMMAND || p.CMD || '').split(' ')[0].split('/').pop();
        return (command || 'process') + ' ' + (p.PID || nameOf(r));
      }
      case 'Image': return imageName(r);
      case 'Container': return containerName(r);
      default:
        if (md.namespace && view.group !== 'Namespace') return md.namespace + '/' + md.name;
        return nameOf(r);
    }
  }
  function imageName(r) {
    const p = r.properties || {};
    const tags = p.RepoTags || p.repoTags;
    if (Array.isArray(tags) && tags.length) return tags[0];
    const label = r.annotations && r.annotations.label;
    return label || r.id.slice(0, 24);
  }
  function containerName(r) {
    const p = r.properties || {};
    // Docker's inspect, or CRI's container status.
    const cri = p.status || {};
    const labels = (p.Config && p.Config.Labels) || cri.labels || {};
    // The master's own label (`NAME/SHORT-ID`) where the runtime's labels do not name it.
    return labels['io.kubernetes.container.name'] || (cri.metadata && cri.metadata.name) ||
      (r.annotations && r.annotations.label) || String(p.Name || '').replace(/^\//, '') || r.id.slice(0, 22);
  }
  function statusOf(r) {
    const p = r.properties || {};
    const s = p.status || {};
    switch (r.type) {
      case 'Pod': {
        const waiting = (s.containerStatuses || []).concat(s.initContainerStatuses || [])
          .map((c) => c.state && c.state.waiting && c.state.waiting.reason).filter(Boolean);
        if (waiting.some((w) => /CrashLoopBackOff|Error|ImagePullBackOff|ErrImagePull/.test(w))) return 'restarting';
        switch (s.phase) {
          case 'Running': {
            const ready = (s.conditions || []).find((c) => c.type === 'Ready');
            return ready && ready.status !== 'True' ? 'pending' : 'running';
          }
          case 'Pending': return 'pending';
          case 'Failed': return 'failed';
          case 'Succeeded': return 'succeeded';
          default: return null;
        }
      }
      case 'Node': {
        const ready = (s.conditions || []).find((c) => c.type === 'Ready');
        if (!ready) return null;
        return ready.status === 'True' ? 'running' : 'failed';
      }
      case 'Container': {
        const state = p.State || {};
        if (state.Restarting) return 'restarting';
        if (state.Running || state.Status === 'running') return 'running';
        if (state.Status === 'exited') return state.ExitCode ? 'failed' : 'succeeded';
        // CRI: the container's or the pod sandbox's state.
        const cri = String((p.status && p.status.state) || '');
        if (cri === 'CONTAINER_RUNNING' || cri === 'SANDBOX_READY') return 'running';
        if (cri === 'CONTAINER_EXITED') return p.status.exitCode ? 'failed' : 'succeeded';
        if (cri === 'SANDBOX_NOTREADY') return 'succeeded';
        if (cri === 'CONTAINER_CREATED') return 'pending';
        return null;
      }
      case 'Deployment': case 'StatefulSet': case 'ReplicaSet': case 'ReplicationController': {
        const want = (p.spec && p.spec.replicas) ?? 1;
        const ready = s.readyReplicas || 0;
        if (want === 0) return 'succeeded';
        return ready >= want ? 'running' : 'pending';
      }
      case 'DaemonSet':
        return (s.numberReady || 0) >= (s.desiredNumberScheduled || 0) ? 'running' : 'pending';
      case 'Job':
        if ((s.failed || 0) > 0 && !s.succeeded) return 'failed';
        if (s.succeeded) return 'succeeded';
        return s.active ? 'running' : 'pending';
      case 'PersistentVolumeClaim': case 'PersistentVolume':
        return s.phase === 'Bound' ? 'running' : s.phase === 'Failed' ? 'failed' : 'pending';
      default: return null;
    }
  }

  // The resource a resource is drawn inside: its pod, container or node (or namespace).
  function nestingParent(m, id, group) {
    const r = m.resources.get(id);
    if (!r) return null;
    if (group === 'Namespace' && r.type !== 'Container' && r.type !== 'Process') {
      const ns = metadata(r).namespace;
      return ns && r.type !== 'Namespace' ? 'Namespace:' + ns : null;
    }
    let parent = null;
    for (const rel of relationsOf(m, id)) {
      if (rel.target !== id || !NESTING.has(rel.type)) continue;
      const from = m.resources.get(rel.source);
      if (!from || from.type === 'Cluster' || from.type === 'Namespace') continue;
      // A container is inside its pod rather than beside it on the node.
      if (!parent || from.type !== 'Node') parent = rel.source;
    }
    if (r.type === 'Pod' || r.type === 'Container' || r.type === 'Process') return parent;
    return null;
  }

  // ---- what is drawn ------------------------------------------------------------------------

  function isDrawn(m, r) {
    if (view.unfolded.has(r.id) || view.revealed.has(r.id)) return namespaceShown(m, r);
    if (view.hiddenTypes.has(r.type)) {
      if (view.unfolded.size === 0) return false;
      // A folded resource is drawn when the user unfolded a neighbour of it.
      const unfoldedNeighbour = relationsOf(m, r.id).some((rel) =>
        view.unfolded.has(rel.source === r.id ? rel.target : rel.source));
      if (!unfoldedNeighbour) return false;
    }
    return namespaceShown(m, r);
  }
  function namespaceShown(m, r) {
    if (view.hiddenNamespaces.size === 0) return true;
    if (r.type === 'Namespace') return !view.hiddenNamespaces.has(metadata(r).name);
    const ns = namespaceOf(m, r);
    return !ns || !view.hiddenNamespaces.has(ns);
  }

  // The elements the drawing should have now, by id.
  function wanted(m) {
    const nodes = new Map();
    for (const r of m.resources.values()) {
      if (isDrawn(m, r)) nodes.set(r.id, r);
    }
    const out = new Map();
    for (const [id, r] of nodes) {
      let parent = nestingParent(m, id, view.group);
      if (parent && !nodes.has(parent)) parent = null;
      const data = { id, label: labelOf(m, r), type: r.type, color: COLORS[r.type] || '#57606a', shape: SHAPES[r.type] || 'ellipse' };
      if (parent) data.parent = parent;
      const status = statusOf(r);
      if (status) data.status = status;
      out.set(id, { group: 'nodes', data, classes: status || '' });
    }
    // At scale, only the selected resource's lines are drawn (see LARGE).
    const large = nodes.size > LARGE;
    const relations = large ? relationsOf(m, view.selected).map((rel) => [relationKey(rel), rel]) : m.relations;
    for (const [key, rel] of relations) {
      if (!nodes.has(rel.source) || !nodes.has(rel.target)) continue;
      const child = out.get(rel.target);
      if (NESTING.has(rel.type) && child.data.parent === rel.source) continue;
      const from = nodes.get(rel.source);
      // Every namespaced object is in its namespace and the cluster: said by the grouping.
      if (rel.type === 'contains' && (from.type === 'Cluster' || from.type === 'Namespace')) continue;
      out.set('edge|' + key, { group: 'edges', data: { id: 'edge|' + key, source: rel.source, target: rel.target, label: rel.type }, classes: large ? 'near' : '' });
    }
    return out;
  }

  function draw({ layout = false } = {}) {
    const started = performance.now();
    const want = wanted(shown);
    const wantedMs = performance.now() - started;
    let addedNodes = 0;
    cy.batch(() => {
      cy.elements().forEach((el) => { if (!want.has(el.id())) el.remove(); });
      const fresh = [];
      const moves = [];
      for (const [id, el] of want) {
        const existing = cy.getElementById(id);
        if (existing.nonempty()) {
          if (el.group === 'nodes') {
            const parent = el.data.parent || null;
            if ((existing.data('parent') || null) !== parent) moves.push([existing, parent]);
            if (existing.data('label') !== el.data.label) existing.data('label', el.data.label);
            if (existing.data('status') !== el.data.status) {
              existing.removeClass(STATUSES.join(' ')).addClass(el.classes);
              if (el.data.status) existing.data('status', el.data.status); else existing.removeData('status');
            }
          }
        } else {
          fresh.push(el);
        }
      }
      // Parents before children: Cytoscape needs a compound's parent to exist.
      fresh.sort((a, b) => (a.group === b.group ? depth(a, want) - depth(b, want) : a.group === 'nodes' ? -1 : 1));
      if (!layout) for (const el of fresh) if (el.group === 'nodes') el.position = placeNear(el, want);
      addedNodes = fresh.filter((el) => el.group === 'nodes').length;
      if (fresh.length) cy.add(fresh);
      // Moved after the adding: a move into a parent that is not there yet is ignored.
      for (const [node, parent] of moves) node.move({ parent });
      markDiff();
    });
    if (layout || cy.nodes().length === addedNodes) runLayout();
    restyleSearch();
    if (view.selected && cy.getElementById(view.selected).empty() && !shown.resources.has(view.selected)) closeDetails();
    else if (view.selected) showDetails(view.selected, { keepView: true });
    document.body.dataset.drawMs = String(Math.round(performance.now() - started));
    document.body.dataset.wantedMs = String(Math.round(wantedMs));
  }
  function depth(el, want) {
    let d = 0;
    for (let p = el.data.parent; p && d < 5; p = want.get(p) && want.get(p).data.parent) d++;
    return d;
  }
  // Where a resource that appeared is put: beside its parent's children or a neighbour.
  function placeNear(el, want) {
    const anchors = [];
    if (el.data.parent) anchors.push(el.data.parent);
    for (const rel of relationsOf(shown, el.data.id)) anchors.push(rel.source === el.data.id ? rel.target : rel.source);
    for (const a of anchors) {
      const n = cy.getElementById(a);
      if (n.nonempty() && want.has(a)) {
        const bb = n.boundingBox();
        return { x: bb.x2 + 20 + Math.random() * 40, y: bb.y1 + Math.random() * Math.max(20, bb.h) };
      }
    }
    const ext = cy.extent();
    return { x: ext.x1 + Math.random() * ext.w, y: ext.y1 + Math.random() * ext.h };
  }

  // Beyond this many drawn resources, fCoSE takes minutes (measured: 160 s for 4,100 nodes
  // in headless Chromium); the map is then laid out as grids: each group's members in a
  // grid inside it, the groups in a grid, and the resources outside any group in a grid of
  // their own below, by type and name. Lines are then drawn for the selected resource only:
  // thousands of them are unreadable, and cost seconds to add and style.
  const LARGE = 1000;

  function runLayout() {
    const started = performance.now();
    const finish = () => {
      document.body.dataset.layoutMs = String(Math.round(performance.now() - started));
      cy.fit(undefined, 30);
    };
    if (cy.nodes().length > LARGE) { gridLayout(); finish(); return; }
    const layout = cy.layout({
      name: 'fcose', quality: 'default', randomize: true, animate: false,
      nodeDimensionsIncludeLabels: true, packComponents: true,
      nodeRepulsion: 6000, idealEdgeLength: 60, nestingFactor: 0.2, tile: true,
    });
    layout.one('layoutstop', finish);
    layout.run();
  }

  function byTypeAndLabel(a, b) {
    return a.data('type').localeCompare(b.data('type')) || a.data('label').localeCompare(b.data('label'));
  }
  // Lays out `nodes` in a grid of cells of `cell` × `cell` from (x, y), `cols` wide, and
  // says how far it reached.
  function grid(nodes, x, y, cols, cell) {
    const rows = Math.max(1, Math.ceil(nodes.length / cols));
    nodes.layout({
      name: 'grid', cols, rows, avoidOverlap: false, animate: false, fit: false,
      boundingBox: { x1: x, y1: y, w: cols * cell, h: rows * cell },
      sort: byTypeAndLabel,
    }).run();
    return { w: cols * cell, h: rows * cell };
  }
  function gridLayout() {
    const cell = 46;
    // Inside out: a pod's containers before the pod is placed within its node.
    const compounds = cy.nodes(':parent').sort((a, b) => b.ancestors().length - a.ancestors().length);
    let widest = 0; let tallest = 0;
    compounds.forEach((parent) => {
      const kids = parent.children();
      const cols = Math.ceil(Math.sqrt(kids.length * 1.5));
      grid(kids, 0, 0, cols, parent.ancestors().length ? cell * 0.8 : cell);
      if (parent.ancestors().length === 0) {
        const bb = parent.boundingBox();
        widest = Math.max(widest, bb.w); tallest = Math.max(tallest, bb.h);
      }
    });
    const groups = cy.nodes(':parent').orphans();
    const loose = cy.nodes().orphans().not(groups);
    const box = { w: widest + 60, h: tallest + 60 };
    const cols = Math.max(1, Math.ceil(Math.sqrt(groups.length * (box.h / box.w) * 1.6)));
    // Each group is moved whole: its members keep their places within it.
    groups.sort((a, b) => a.data('label').localeCompare(b.data('label'))).forEach((g, i) => {
      const bb = g.boundingBox();
      const x = (i % cols) * box.w; const y = Math.floor(i / cols) * box.h;
      g.descendants().shift({ x: x - bb.x1, y: y - bb.y1 });
    });
    const below = Math.ceil(groups.length / cols) * box.h + (groups.length ? 80 : 0);
    grid(loose, 0, below, Math.max(10, Math.floor((cols * box.w) / cell)), cell);
  }

  // ---- styles -------------------------------------------------------------------------------

  function style() {
    const status = (name, color) => ({ selector: 'node.' + name, style: { 'border-color': color, 'border-width': 3 } });
    return [
      { selector: 'node', style: {
        label: 'data(label)', 'font-size': 10, 'text-valign': 'bottom', 'text-margin-y': 3,
        'background-color': 'data(color)', shape: 'data(shape)', width: 18, height: 18,
        'border-width': 1, 'border-color': '#ffffff', color: '#1f2328',
        'text-max-width': 140, 'text-wrap': 'ellipsis', 'min-zoomed-font-size': 7,
      } },
      { selector: ':parent', style: {
        'background-opacity': 0.06, 'background-color': 'data(color)', 'border-color': 'data(color)',
        'border-width': 1, shape: 'round-rectangle', 'text-valign': 'top', 'text-halign': 'center',
        'font-size': 12, 'font-weight': 'bold', padding: 12, 'text-margin-y': -2,
      } },
      { selector: 'node[type = "Pod"]:parent', style: { 'font-size': 10, padding: 6, 'border-style': 'solid' } },
      { selector: 'node[type = "Container"]:parent', style: { 'font-size': 9, padding: 4, 'border-style': 'dashed' } },
      status('running', '#2da44e'), status('pending', '#d4a72c'), status('restarting', '#fb8f44'),
      status('failed', '#cf222e'), status('succeeded', '#8c959f'),
      { selector: 'node[type = "Process"]', style: { width: 10, height: 10, 'font-size': 8 } },
      { selector: 'edge', style: {
        width: 1, 'line-color': '#afb8c1', 'target-arrow-color': '#afb8c1',
        'target-arrow-shape': 'triangle', 'curve-style': 'bezier', 'arrow-scale': 0.7,
        label: '', 'font-size': 8, color: '#57606a',
      } },
      { selector: 'edge[label = "owns"]', style: { 'line-color': '#cf7a36', 'target-arrow-color': '#cf7a36', width: 1.5 } },
      { selector: 'edge[label = "loadBalances"]', style: { 'line-color': '#2da44e', 'target-arrow-color': '#2da44e', 'line-style': 'dashed' } },
      { selector: 'edge.near', style: { label: 'data(label)', width: 2, 'line-color': '#0969da', 'target-arrow-color': '#0969da', 'z-index': 10 } },
      { selector: 'node:selected', style: { 'border-color': '#0969da', 'border-width': 4, 'overlay-opacity': 0 } },
      { selector: '.faded', style: { opacity: 0.15 } },
      { selector: 'node.match', style: { 'border-color': '#0969da', 'border-width': 4, 'font-weight': 'bold', 'z-index': 20 } },
      { selector: 'node.gone-now', style: { 'border-style': 'dashed', 'border-color': '#cf222e', 'border-width': 3 } },
      { selector: 'node.changed-since', style: { 'border-style': 'double', 'border-color': '#0969da', 'border-width': 4 } },
    ];
  }

  // ---- filters ------------------------------------------------------------------------------

  function fillFilters() {
    const nsCounts = new Map();
    const typeCounts = new Map();
    for (const r of shown.resources.values()) {
      typeCounts.set(r.type, (typeCounts.get(r.type) || 0) + 1);
      if (r.type === 'Namespace') nsCounts.set(metadata(r).name, nsCounts.get(metadata(r).name) || 0);
      const ns = metadata(r).namespace;
      if (ns) nsCounts.set(ns, (nsCounts.get(ns) || 0) + 1);
    }
    checks($('namespaces'), [...nsCounts].sort(), view.hiddenNamespaces, 'ns');
    checks($('types'), [...typeCounts].sort(), view.hiddenTypes, 'type');
  }
  function checks(box, entries, hidden, what) {
    const present = new Map([...box.querySelectorAll('input')].map((i) => [i.value, i]));
    const names = new Set(entries.map(([name]) => name));
    for (const [name, input] of present) if (!names.has(name)) input.parentElement.remove();
    for (const [name, count] of entries) {
      let input = present.get(name);
      if (!input) {
        const label = document.createElement('label');
        input = document.createElement('input');
        input.type = 'checkbox'; input.value = name; input.dataset.filter = what;
        input.addEventListener('change', () => {
          if (input.checked) hidden.delete(name); else hidden.add(name);
          draw();
        });
        const count = document.createElement('span');
        count.className = 'count';
        label.append(input, ' ' + name + ' ', count);
        box.append(label);
      }
      input.checked = !hidden.has(name);
      input.parentElement.querySelector('.count').textContent = String(count);
    }
  }

  // ---- search ------------------------------------------------------------------------------

  // A query is a label selector when it has `=` or `!`; otherwise words that must all be
  // in the resource's ID or label.
  function matcher(query) {
    const q = query.trim();
    if (!q) return null;
    if (/[=!]/.test(q)) {
      const terms = q.split(',').map((t) => t.trim()).filter(Boolean).map((t) => {
        let m;
        if ((m = t.match(/^([^!=]+?)\s*(==|=|!=)\s*(.*)$/))) return { key: m[1], op: m[2] === '!=' ? '!=' : '=', value: m[3] };
        if ((m = t.match(/^!\s*(.+)$/))) return { key: m[1], op: '!' };
        return { key: t, op: 'exists' };
      });
      return (r) => {
        const labels = metadata(r).labels;
        if (!labels) return false;
        return terms.every((t) => {
          const has = Object.prototype.hasOwnProperty.call(labels, t.key);
          switch (t.op) {
            case '=': return has && labels[t.key] === t.value;
            case '!=': return !has || labels[t.key] !== t.value;
            case '!': return !has;
            default: return has;
          }
        });
      };
    }
    const words = q.toLowerCase().split(/\s+/);
    return (r) => {
      const text = (r.id + ' ' + labelOf(shown, r)).toLowerCase();
      return words.every((w) => text.includes(w));
    };
  }
  function runSearch() {
    const match = matcher($('search').value);
    const list = $('search-results');
    list.replaceChildren();
    if (!match) { view.search = null; list.hidden = true; restyleSearch(); return; }
    const found = [...shown.resources.values()].filter(match);
    view.search = new Set(found.map((r) => r.id));
    found.sort((a, b) => (a.type === 'Pod' ? 0 : 1) - (b.type === 'Pod' ? 0 : 1) || a.id.localeCompare(b.id));
    for (const r of found.slice(0, 50)) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button'; b.dataset.id = r.id;
      const t = document.createElement('span'); t.className = 'type'; t.textContent = r.type;
      b.append(labelOf(shown, r), t);
      b.addEventListener('click', () => { list.hidden = true; select(r.id); });
      li.append(b); list.append(li);
    }
    if (found.length > 50) {
      const li = document.createElement('li'); li.className = 'small';
      li.textContent = `and ${found.length - 50} more`; list.append(li);
    }
    if (!found.length) {
      const li = document.createElement('li'); li.className = 'small'; li.textContent = 'nothing found'; list.append(li);
    }
    list.hidden = false;
    restyleSearch();
  }
  function restyleSearch() {
    const found = view.search || new Set();
    // Fading every other element restyles all of them: at scale, matches are marked alone.
    const fade = view.search && cy.nodes().length <= LARGE;
    cy.batch(() => {
      cy.nodes('.match').forEach((n) => { if (!found.has(n.id())) n.removeClass('match'); });
      for (const id of found) cy.getElementById(id).addClass('match');
      if (fade) {
        cy.elements().forEach((e) => e.toggleClass('faded', e.isEdge() || (!found.has(e.id()) && !e.isParent())));
      } else if (view.faded) {
        cy.elements('.faded').removeClass('faded');
      }
      view.faded = fade;
    });
  }

  // ---- the resource panel -----------------------------------------------------------------

  function select(id) {
    const r = shown.resources.get(id);
    if (!r) return;
    // A resource the filters hide is drawn once asked for.
    if (cy.getElementById(id).empty()) {
      view.revealed.add(id);
      if (!namespaceShown(shown, r)) view.hiddenNamespaces.delete(namespaceOf(shown, r));
      draw();
      fillFilters();
    }
    focus(id);
    const node = cy.getElementById(id);
    node.select();
    cy.animate({ center: { eles: node }, zoom: Math.max(cy.zoom(), 1.2) }, { duration: 300 });
  }
  // Shows a resource's panel and its lines (drawn now, at scale, where lines are drawn for
  // the selected resource only).
  function focus(id) {
    const before = view.selected;
    view.selected = id;
    if (cy.nodes().length > LARGE && before !== id) draw();
    showDetails(id);
  }
  function ref(id, text) {
    const b = document.createElement('button');
    b.type = 'button'; b.className = 'ref'; b.dataset.id = id;
    b.textContent = text || id;
    b.addEventListener('click', () => select(id));
    return b;
  }
  function showDetails(id, { keepView = false } = {}) {
    const r = shown.resources.get(id);
    if (!r) { closeDetails(); return; }
    const panel = $('details');
    panel.hidden = false;
    $('details-title').textContent = r.type + ' ' + labelOf(shown, r);
    const body = $('details-body');
    const open = new Set([...body.querySelectorAll('details[open]')].map((d) => d.dataset.path));
    body.replaceChildren();
    const table = document.createElement('table');
    const row = (k, v) => {
      const tr = document.createElement('tr');
      const a = document.createElement('td'); a.textContent = k;
      const b = document.createElement('td');
      if (v instanceof Node) b.append(v); else b.textContent = v;
      tr.append(a, b); table.append(tr);
    };
    row('ID', r.id);
    const status = statusOf(r);
    if (status) { const s = document.createElement('span'); s.className = 'status ' + status; s.textContent = status; row('status', s); }
    const ns = namespaceOf(shown, r); if (ns) row('namespace', ns);
    const labels = metadata(r).labels;
    if (labels) row('labels', Object.entries(labels).map(([k, v]) => k + '=' + v).join(', '));
    if (r.timestamp) row('seen', r.timestamp);
    body.append(table);

    const unfold = document.createElement('button');
    unfold.type = 'button';
    unfold.id = 'unfold';
    const isUnfolded = view.unfolded.has(id);
    unfold.textContent = isUnfolded ? 'Fold its containers and images' : 'Show its containers, processes and images';
    unfold.addEventListener('click', () => {
      if (view.unfolded.has(id)) view.unfolded.delete(id); else view.unfolded.add(id);
      // Unfolding a pod shows its containers; their processes and images come with them.
      for (const rel of relationsOf(shown, id)) {
        const other = rel.source === id ? rel.target : rel.source;
        const o = shown.resources.get(other);
        if (o && o.type === 'Container') { if (view.unfolded.has(id)) view.unfolded.add(other); else view.unfolded.delete(other); }
      }
      draw();
    });
    body.append(unfold);

    const chain = ownerChain(shown, id);
    if (chain) { const h = document.createElement('h3'); h.textContent = 'Owner chain'; body.append(h, chain); }

    const rels = relationsOf(shown, id).sort((a, b) => a.type.localeCompare(b.type));
    if (rels.length) {
      const h = document.createElement('h3'); h.textContent = `Relations (${rels.length})`;
      const ul = document.createElement('ul'); ul.id = 'relations';
      for (const rel of rels.slice(0, 200)) {
        const li = document.createElement('li');
        const outgoing = rel.source === id;
        const other = outgoing ? rel.target : rel.source;
        const o = shown.resources.get(other);
        li.append(outgoing ? rel.type + ' → ' : '← ' + rel.type + ' ', ref(other, o ? o.type + ' ' + labelOf(shown, o) : other));
        ul.append(li);
      }
      if (rels.length > 200) { const li = document.createElement('li'); li.textContent = `and ${rels.length - 200} more`; ul.append(li); }
      body.append(h, ul);
    }
    const h = document.createElement('h3'); h.textContent = 'Properties';
    const props = document.createElement('div'); props.className = 'props'; props.id = 'properties';
    propertyTree(props, r.properties || {}, 'p', open, 1);
    body.append(h, props);
    if (r.annotations) {
      const ha = document.createElement('h3'); ha.textContent = 'Annotations';
      const pa = document.createElement('div'); pa.className = 'props';
      propertyTree(pa, r.annotations, 'a', open, 1);
      body.append(ha, pa);
    }
    if (!keepView) highlightNeighbours(id);
  }
  function propertyTree(parent, value, path, open, level) {
    for (const [k, v] of Object.entries(value)) {
      const p = path + '.' + k;
      if (v && typeof v === 'object' && Object.keys(v).length) {
        const d = document.createElement('details');
        d.dataset.path = p;
        d.open = open.has(p) || (level === 1 && (k === 'metadata' || k === 'status'));
        const s = document.createElement('summary');
        const key = document.createElement('span'); key.className = 'key'; key.textContent = k;
        s.append(key, Array.isArray(v) ? ` [${v.length}]` : '');
        d.append(s);
        // Filled when opened, so that a pod's whole spec costs nothing until read.
        const fill = () => { if (!d.dataset.filled) { d.dataset.filled = '1'; propertyTree(d, v, p, open, level + 1); } };
        if (d.open) fill(); else d.addEventListener('toggle', fill, { once: true });
        parent.append(d);
      } else {
        const div = document.createElement('div'); div.className = 'leaf';
        const key = document.createElement('span'); key.className = 'key'; key.textContent = k + ': ';
        const val = document.createElement('span'); val.className = 'value';
        val.textContent = v && typeof v === 'object' ? (Array.isArray(v) ? '[]' : '{}') : JSON.stringify(v);
        div.append(key, val); parent.append(div);
      }
    }
  }
  function highlightNeighbours(id) {
    cy.edges().removeClass('near');
    cy.getElementById(id).connectedEdges().addClass('near');
  }
  function closeDetails() {
    const before = view.selected;
    view.selected = null;
    $('details').hidden = true;
    cy.edges().removeClass('near');
    cy.elements().unselect();
    if (before && cy.nodes().length > LARGE) draw();
  }

  // Who owns a resource, up to the top (Deployment → ReplicaSet → Pod → Container →
  // Process), and what it owns or holds, a few levels down.
  function ownerChain(m, id) {
    const up = (x) => relationsOf(m, x).filter((rel) => rel.target === x && (rel.type === 'owns' ||
      (rel.type === 'contains' && ['Pod', 'Container'].includes((m.resources.get(rel.source) || {}).type))));
    const down = (x) => relationsOf(m, x).filter((rel) => rel.source === x && (rel.type === 'owns' ||
      (rel.type === 'contains' && ['Pod', 'Container'].includes((m.resources.get(x) || {}).type))));
    const ancestors = [];
    const seen = new Set([id]);
    for (let x = id; ;) {
      const owner = up(x).map((rel) => rel.source).find((s) => !seen.has(s));
      if (!owner) break;
      ancestors.unshift(owner); seen.add(owner); x = owner;
    }
    if (!ancestors.length && !down(id).length) return null;
    const item = (x, self) => {
      const li = document.createElement('li');
      const o = m.resources.get(x);
      const b = ref(x, o ? o.type + ' ' + labelOf(m, o) : x);
      if (self) b.classList.add('self');
      li.append(b);
      return li;
    };
    const root = document.createElement('ul'); root.className = 'tree'; root.id = 'owner-chain';
    let at = root;
    for (const a of ancestors) { const li = item(a); const ul = document.createElement('ul'); li.append(ul); at.append(li); at = ul; }
    const self = item(id, true);
    at.append(self);
    const grow = (x, li, depthLeft) => {
      const kids = down(x).map((rel) => rel.target).filter((t) => !seen.has(t));
      if (!kids.length || depthLeft === 0) return;
      const ul = document.createElement('ul');
      for (const k of kids.slice(0, 50)) { seen.add(k); const kl = item(k); grow(k, kl, depthLeft - 1); ul.append(kl); }
      if (kids.length > 50) { const more = document.createElement('li'); more.textContent = `and ${kids.length - 50} more`; ul.append(more); }
      li.append(ul);
    };
    grow(id, self, 3);
    return root;
  }

  // ---- the API -------------------------------------------------------------------------------

  async function api(path, init = {}) {
    const headers = Object.assign({}, init.headers || {});
    if (token.value) headers.Authorization = 'Bearer ' + token.value;
    const response = await fetch(path, Object.assign({}, init, { headers }));
    if (response.status === 401) { askToken(); throw new Error('this master asks for a token'); }
    return response;
  }
  async function apiJson(path) {
    const response = await api(path);
    if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.text()).slice(0, 300)}`);
    return response.json();
  }
  function askToken() {
    const dialog = $('token-dialog');
    if (!dialog.open) dialog.showModal();
  }
  function showError(message) {
    const box = $('error');
    box.textContent = message;
    box.hidden = !message;
  }
  function setBadge(text, kind) {
    const b = $('live'); b.textContent = text; b.className = 'badge ' + (kind || '');
  }

  async function loadLive() {
    const graph = await apiJson('/cluster');
    loadModel(live, graph);
    const name = [...live.resources.values()].find((r) => r.type === 'Cluster');
    $('cluster-name').textContent = name ? nameOf(name) : '';
    document.title = 'Cluster Insight' + (name ? ': ' + nameOf(name) : '');
  }

  // The change stream, read with fetch (EventSource cannot send a token). A change whose
  // `previous` is not the sequence held, or a `sync` that says the place was lost, makes the
  // page read the whole graph again.
  async function follow() {
    for (let failures = 0; ; failures++) {
      try {
        const response = await api('/cluster/changes/stream?since=' + live.sequence, { headers: { Accept: 'text/event-stream' } });
        if (response.status === 503 || response.status === 404) { await poll(); continue; }
        if (!response.ok) throw new Error('the change stream: ' + response.status);
        failures = 0;
        if (shown === live) setBadge('live', 'live');
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            await onEvent(block);
          }
        }
      } catch (e) {
        if (shown === live) setBadge('reconnecting', 'down');
        console.warn('change stream:', e.message);
      }
      await sleep(Math.min(1000 * 2 ** failures, 15000));
    }
  }
  // Without a stream (an older master, or all streams taken): the graph's ETag, polled.
  async function poll() {
    let etag = null;
    if (shown === live) setBadge('polling', 'live');
    for (let i = 0; i < 12; i++) {
      const response = await api('/cluster', { headers: etag ? { 'If-None-Match': etag } : {} });
      if (response.status === 200) {
        etag = response.headers.get('ETag');
        const graph = await response.json();
        if (graph.sequence !== live.sequence) { loadModel(live, graph); if (shown === live) { draw(); fillFilters(); } }
      }
      await sleep(5000);
    }
  }
  async function onEvent(block) {
    let event = 'message'; let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data += (data ? '\n' : '') + value;
    }
    if (!data) return;
    const doc = JSON.parse(data);
    if (event === 'sync') {
      if (doc.reset || doc.sequence !== live.sequence) await reload();
      return;
    }
    if (event !== 'change') return;
    // A change the graph held already has (the stream resumed before it): passed over. A
    // change after one the page never saw: the graph is read again.
    if (doc.sequence <= live.sequence) return;
    if (doc.previous !== live.sequence) { await reload(); return; }
    applyChange(live, doc);
    noteChange(doc);
    if (shown === live) { draw(); fillFilters(); } else { comparePast(); markDiff(); }
    updateTimeRange();
  }
  // The whole graph again; what is still there stays where it was drawn.
  async function reload() {
    await loadLive();
    if (shown === live) { draw(); fillFilters(); }
  }
  function applyChange(m, doc) {
    for (const r of doc.resources.added.concat(doc.resources.changed)) m.resources.set(r.id, r);
    for (const r of doc.resources.removed) m.resources.delete(r.id);
    for (const r of doc.relations.removed) removeRelation(m, r);
    for (const r of doc.relations.added.concat(doc.relations.changed)) addRelation(m, r);
    m.sequence = doc.sequence; m.timestamp = doc.timestamp;
  }
  // The last changes, newest first, each with a way to see the graph just before it.
  function noteChange(doc) {
    const li = document.createElement('li');
    const when = document.createElement('button');
    when.type = 'button'; when.className = 'link';
    when.textContent = new Date(doc.timestamp).toLocaleTimeString();
    when.title = 'See the graph just before this change';
    when.addEventListener('click', () => goTo(Date.parse(doc.timestamp) - 1));
    li.append(when, ' ');
    const parts = [['added', doc.resources.added, '+'], ['changed', doc.resources.changed, '~'], ['removed', doc.resources.removed, '−']];
    for (const [kind, list, sign] of parts) {
      for (const r of list.slice(0, 4)) {
        const s = document.createElement('span'); s.className = kind;
        s.append(sign, kind === 'removed' ? r.id : ref(r.id, r.type + ' ' + labelOf(live, r)));
        li.append(s, ' ');
      }
      if (list.length > 4) li.append(`${sign}${list.length - 4} more `);
    }
    const box = $('changes');
    box.prepend(li);
    while (box.children.length > 30) box.lastChild.remove();
  }

  // ---- history ---------------------------------------------------------------------------------

  async function readHistory() {
    try {
      const status = await apiJson('/status');
      const h = status.history;
      if (h && h.keepSeconds > 0 && h.oldest) {
        history = { oldestMs: Date.parse(h.oldest) };
        $('time').disabled = false;
        updateTimeRange();
      }
    } catch (e) { console.warn('no history:', e.message); }
  }
  function updateTimeRange() {
    if (!history || shown !== live) return;
    $('time').value = $('time').max;
  }
  function timeAt(value) {
    const now = Date.now();
    return history.oldestMs + (now - history.oldestMs) * (value / Number($('time').max));
  }
  let goingTo = 0; // the last request for the past: an earlier one answering late is dropped
  async function goTo(ms) {
    // At or after the latest snapshot is now.
    if (ms >= Date.parse(live.timestamp)) { backToLive(); return; }
    const asked = ++goingTo;
    try {
      await readHistory(); // the oldest time kept moves on as the master forgets
      if (!history) { showError('This master keeps no history (--history 0).'); return; }
      const at = new Date(Math.max(ms, history.oldestMs)).toISOString();
      const graph = await apiJson('/cluster?at=' + encodeURIComponent(at));
      if (asked !== goingTo) return;
      const past = newModel();
      loadModel(past, graph);
      shown = past;
      comparePast();
      $('time-label').textContent = new Date(Date.parse(at)).toLocaleString();
      $('back-to-live').hidden = false;
      const span = Date.now() - history.oldestMs;
      $('time').value = String(Math.round(((Date.parse(at) - history.oldestMs) / span) * Number($('time').max)));
      setBadge('past', 'past');
      draw(); fillFilters();
    } catch (e) { showError(e.message); }
  }
  function backToLive() {
    goingTo++;
    shown = live; view.pastDiff = null;
    $('time-label').textContent = 'live'; $('time-summary').textContent = '';
    $('back-to-live').hidden = true;
    $('time').value = $('time').max;
    setBadge('live', 'live');
    draw(); fillFilters();
  }
  // What differs between the past shown and the live graph, kept as live changes come.
  function comparePast() {
    const d = (view.pastDiff = diffModels(shown, live));
    $('time-summary').textContent = `since then: ${d.added} added, ${d.changed.size} changed, ${d.gone.size} removed`;
  }
  function diffModels(past, now) {
    const gone = new Set(); const changed = new Set(); let added = 0;
    for (const [id, r] of past.resources) {
      const n = now.resources.get(id);
      if (!n) gone.add(id);
      else if (JSON.stringify(n.properties) !== JSON.stringify(r.properties)) changed.add(id);
    }
    for (const id of now.resources.keys()) if (!past.resources.has(id)) added++;
    return { gone, changed, added };
  }
  function markDiff() {
    if (view.marked) cy.nodes('.gone-now, .changed-since').removeClass('gone-now changed-since');
    const d = view.pastDiff;
    view.marked = Boolean(d);
    if (!d) return;
    for (const id of d.gone) cy.getElementById(id).addClass('gone-now');
    for (const id of d.changed) cy.getElementById(id).addClass('changed-since');
  }

  // ---- start ----------------------------------------------------------------------------------

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  function wire() {
    let searchTimer = null;
    $('search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 150); });
    $('search').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { const first = $('search-results').querySelector('button'); if (first) first.click(); }
      if (e.key === 'Escape') { $('search').value = ''; runSearch(); }
    });
    $('group-by').addEventListener('change', (e) => {
      const before = view.group;
      view.group = e.target.value;
      // The other grouping's kind is drawn as groups no more: its members say it.
      view.hiddenTypes.delete(view.group);
      view.hiddenTypes.add(before);
      draw({ layout: true }); fillFilters();
    });
    $('fit').addEventListener('click', () => cy.fit(undefined, 30));
    $('relayout').addEventListener('click', () => runLayout());
    $('close-details').addEventListener('click', closeDetails);
    $('back-to-live').addEventListener('click', backToLive);
    $('time').addEventListener('change', (e) => {
      const v = Number(e.target.value);
      if (v >= Number(e.target.max)) backToLive(); else goTo(timeAt(v));
    });
    for (const b of document.querySelectorAll('[data-all]')) {
      b.addEventListener('click', () => {
        if (b.dataset.all === 'namespaces') view.hiddenNamespaces.clear();
        else { view.hiddenTypes.clear(); view.hiddenTypes.add(view.group === 'Node' ? 'Namespace' : 'Node'); }
        draw(); fillFilters();
      });
    }
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      token.value = $('token').value.trim();
      sessionStorage.setItem('cluster-insight-token', token.value);
      $('token-dialog').close();
      start();
    });
    cy.on('tap', 'node', (e) => { if (e.target.data('type') !== 'Namespace') focus(e.target.id()); });
    cy.on('tap', (e) => { if (e.target === cy) { closeDetails(); $('search-results').hidden = true; } });
  }

  let started = false;
  async function start() {
    try {
      showError('');
      const t0 = performance.now();
      await loadLive();
      document.body.dataset.loadMs = String(Math.round(performance.now() - t0));
      fillFilters();
      draw({ layout: true });
      document.body.dataset.ready = 'true';
      document.body.dataset.readyMs = String(Math.round(performance.now()));
      if (!started) {
        started = true;
        readHistory();
        follow();
      }
    } catch (e) {
      showError('Cannot read the graph: ' + e.message);
      setBadge('down', 'down');
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    cytoscape.use(cytoscapeFcose);
    cy = cytoscape({
      container: $('map'), style: style(), minZoom: 0.02, maxZoom: 4,
      hideEdgesOnViewport: true, textureOnViewport: false, boxSelectionEnabled: false,
    });
    view.hiddenTypes.add('Namespace');
    // For tests and for people at the console.
    window.clusterInsight = { cy, live, view, get shown() { return shown; } };
    wire();
    start();
  });
})();
