-- junction.erd: the entity-relationship diagram of a connection's models, as
-- Graphviz DOT text (render it with `dot -Tsvg`).
--
-- One box per model: its name and table, then a row per column with the
-- column's SQL type and PK / FK marks.  One arrow per foreign key, from the
-- referring column to the referred one, labelled with the associations that
-- use it (kind and alias): a belongsToMany pair shows as two arrows out of its
-- junction model, which sits between the two models it links.
local M = {}

local function html(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

local function id(s)
  return '"' .. tostring(s):gsub("\\", "\\\\"):gsub('"', '\\"') .. '"'
end

-- The column types the database reports for the model's table (empty when
-- the table does not exist yet): SQLite's declared types, or PostgreSQL's
-- from information_schema (bigint, varchar(60), ...).
local function column_types(db, model)
  local types = {}
  local info = model:_info()
  local rows
  if db:engine() == "postgres" then   -- in the model's schema, or the connection's own
    local sql = "SELECT column_name AS name, CASE WHEN data_type = 'character varying' " ..
          "THEN 'varchar(' || character_maximum_length || ')' ELSE data_type END AS type " ..
          "FROM information_schema.columns WHERE table_schema = %s AND table_name = ?"
    if info.schema then rows = db:query(sql:format("?"), info.schema, info.tableName)
    else rows = db:query(sql:format("current_schema()"), info.tableName) end
  else   -- a schema prefixes the table's one name on SQLite
    rows = db:query("SELECT name, type FROM pragma_table_info(?)",
                    info.schema and (info.schema .. "." .. info.tableName) or info.tableName)
  end
  for _, r in ipairs(rows or {}) do types[r.name] = r.type end
  return types
end

local function sorted_models(db)
  local list = {}
  for _, m in pairs(db:_models()) do list[#list + 1] = m end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

local function node(db, model)
  local info = model:_info()
  local types = column_types(db, model)
  local refs = {}
  for _, d in ipairs(info.declarations) do
    if d.ref_model then refs[d.name] = d.ref_model .. "." .. tostring(d.ref_key or "") end
  end
  local rows = {
    string.format('<TR><TD BGCOLOR="#dde4ee"><B>%s</B><BR/><FONT POINT-SIZE="10">%s</FONT></TD></TR>',
                  html(model.name), html(info.schema and (info.schema .. "." .. info.tableName)
                                                  or info.tableName)),
  }
  for _, f in ipairs(info.fields) do
    local marks = {}
    if f == info.primaryKey then marks[#marks + 1] = "PK" end
    if refs[f] then marks[#marks + 1] = "FK" end
    local col = info.columns and info.columns[f] or f   -- the table's column of attribute f
    local t = types[col] and types[col] ~= "" and (" " .. types[col]) or ""
    if col ~= f then t = " (" .. col .. ")" .. t end
    local m = #marks > 0 and (" <I>" .. table.concat(marks, ", ") .. "</I>") or ""
    rows[#rows + 1] = string.format('<TR><TD ALIGN="LEFT" PORT=%s>%s%s%s</TD></TR>',
                                    id(f), html(f), html(t), m)
  end
  return string.format('  %s [label=<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">%s</TABLE>>];',
                       id(model.name), table.concat(rows))
end

-- Every arrow: from model/column to model/column, with the labels of the
-- associations that share it, in a stable order.
local function edges(db)
  local bykey, order = {}, {}
  -- child.fcol refers to parent.tcol; flip draws it child -> parent, so that
  -- a junction model sits between the two models it links
  local function add(child, fcol, parent, tcol, label, style, flip)
    local key = table.concat({ child, fcol, parent, tcol }, "\0")
    local e = bykey[key]
    if not e then
      e = { child = child, fcol = fcol, parent = parent, tcol = tcol, labels = {}, seen = {}, style = style,
            flip = flip }
      bykey[key] = e
      order[#order + 1] = e
    end
    if not e.seen[label] then e.seen[label] = true; e.labels[#e.labels + 1] = label end
    if style == "bold" then e.style = style end
  end
  for _, m in ipairs(sorted_models(db)) do
    local aliases = {}
    for alias in pairs(m:_info().associations) do aliases[#aliases + 1] = alias end
    table.sort(aliases)
    for _, alias in ipairs(aliases) do
      local a = m:_info().associations[alias]:info()
      local s, t = a.source, a.target
      local label = string.format("%s %s %s", s.name, a.kind, alias)
      if a.kind == "belongsTo" then
        add(s.name, a.foreignKey, t.name, a.targetKey, label)
      elseif a.kind == "hasMany" or a.kind == "hasOne" then
        add(t.name, a.foreignKey, s.name, a.sourceKey, label)
      elseif a.kind == "belongsToMany" then
        local j = a.through
        -- one arrow into the junction model and one out of it, the same way
        -- from whichever side the pair is declared
        add(j.name, a.foreignKey, s.name, a.sourceKey, label, "bold", s.name > t.name)
        add(j.name, a.otherKey, t.name, a.targetKey, label, "bold", t.name > s.name)
      end
    end
  end
  return order
end

--- junction.erd(db, opts): DOT text of the models defined on db.  opts.title
-- names the graph (default "junction").
function M.dot(db, opts)
  if require("junction").type(db) ~= "connection" then
    error("junction.erd: bad argument #1 (connection expected, got " .. type(db) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("junction.erd: bad argument #2 (table expected, got " .. type(opts) .. ")", 2)
  end
  local title = opts and rawget(opts, "title") or "junction"
  local out = {
    "digraph " .. id(title) .. " {",
    '  graph [rankdir=LR, fontname="Helvetica", nodesep=0.6, ranksep=1.2];',
    '  node [shape=plaintext, fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9];',
  }
  for _, m in ipairs(sorted_models(db)) do out[#out + 1] = node(db, m) end
  for _, e in ipairs(edges(db)) do
    local labels = {}
    for i, l in ipairs(e.labels) do labels[i] = id(l):sub(2, -2) end
    local a, b = id(e.parent) .. ":" .. id(e.tcol), id(e.child) .. ":" .. id(e.fcol)
    local dir = "arrowhead=crow, arrowtail=tee"   -- crow's foot on the many side
    if e.flip then a, b, dir = b, a, "arrowhead=tee, arrowtail=crow" end
    out[#out + 1] = string.format('  %s -> %s [dir=both, %s, label="%s"%s];', a, b, dir,
                                  table.concat(labels, "\\n"), e.style and (", style=" .. e.style) or "")
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

return M
