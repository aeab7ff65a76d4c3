-- juju.statusformat: `juju status` output in Juju 1.25's formats: yaml
-- (default), json, tabular, summary and oneline (alias short, line). The
-- status document is {environment=, machines={[id]=entry}, services={}};
-- what the formats print, and where the text ones align columns, follows
-- 1.25's cmd/juju status formatters (Go text/tabwriter, padding 1).
local yaml = require("juju.yaml")
local json = require("juju.json")

local M = {}

M.FORMATS = { yaml = true, json = true, tabular = true, summary = true, oneline = true, short = true, line = true }

-- 1.25's machine keys, in its struct order.
M.MACHINE_KEYS = { "agent-state", "agent-state-info", "agent-version", "dns-name", "instance-id",
  "instance-state", "life", "series", "containers", "hardware", "state-server-member-status" }

local function sorted_keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  table.sort(out, function(a, b)
    local na, nb = tonumber(a), tonumber(b)
    if na and nb then return na < nb end
    return tostring(a) < tostring(b)
  end)
  return out
end

--- Applies 1.25's conventions to a collected document: machine 0 (the only
--- state server without HA) is `state-server-member-status: has-vote`; the
--- local provider's machine 0 is `dns-name: localhost` with no hardware.
function M.normalize(doc, provider_type)
  local machines = {}
  for id, m in pairs(doc.machines or {}) do
    local e = {}
    for k, v in pairs(m) do e[k] = v end
    if provider_type == "local" and id == "0" then
      e["dns-name"] = "localhost"
      e.hardware = nil
    end
    -- Collected from the replicated store when there is one (juju.ha).
    if id == "0" and e["state-server-member-status"] == nil then e["state-server-member-status"] = "has-vote" end
    machines[id] = yaml.ordered(e, M.MACHINE_KEYS)
  end
  return yaml.ordered({ environment = doc.environment, machines = machines, services = doc.services or {} },
    { "environment", "machines", "services" })
end

-- Go's text/tabwriter (minwidth 0, padding 1, padchar ' '): rows are arrays
-- of cells; every cell but a row's last is tab-terminated and aligned in
-- column blocks of consecutive rows that have that column.
local function tabwrite(rows, align_right)
  local out = {}
  local function write_rows(r0, r1, widths)
    for i = r0, r1 - 1 do
      local row, parts = rows[i], {}
      for j, cell in ipairs(row) do
        local w = widths[j]
        if w then
          local pad = string.rep(" ", w - #cell)
          parts[#parts + 1] = align_right and (pad .. cell) or (cell .. pad)
        else
          parts[#parts + 1] = cell
        end
      end
      out[#out + 1] = table.concat(parts) .. "\n"
    end
  end
  local function format(r0, r1, widths)
    local column = #widths + 1
    local this = r0
    while this < r1 do
      if column < #rows[this] then
        write_rows(r0, this, widths)
        r0 = this
        local width = 0
        while this < r1 and column < #rows[this] do
          width = math.max(width, #rows[this][column] + 1)
          this = this + 1
        end
        local w2 = table.move(widths, 1, #widths, 1, {})
        w2[#w2 + 1] = width
        format(r0, this, w2)
        r0 = this
      else
        this = this + 1
      end
    end
    write_rows(r0, r1, widths)
  end
  format(1, #rows + 1, {})
  return table.concat(out)
end

-- A row as 1.25's p(values...) wrote it: each value then a tab, so the
-- row's last cell is empty. A value may hold tabs (more cells).
local function row(...)
  local cells = {}
  for _, v in ipairs({ ... }) do
    for c in (tostring(v) .. "\t"):gmatch("([^\t]*)\t") do cells[#cells + 1] = c end
  end
  cells[#cells + 1] = ""
  return cells
end

local function units_of(doc)
  local units = {}
  for _, sname in ipairs(sorted_keys(doc.services)) do
    for uname, u in pairs(doc.services[sname].units or {}) do units[uname] = u end
  end
  return units
end

-- Calls fn(name, unit, level) for units (sorted) and, below each, its
-- subordinates (level + 1), as 1.25's recurseUnits.
local function each_unit(units, fn, level)
  level = level or 0
  for _, name in ipairs(sorted_keys(units)) do
    fn(name, units[name], level)
    each_unit(units[name].subordinates, fn, level + 1)
  end
end

local function tabular(doc)
  local parts = {}
  local rows = { row("[Services]"), row("NAME\tSTATUS\tEXPOSED\tCHARM") }
  for _, name in ipairs(sorted_keys(doc.services)) do
    local s = doc.services[name]
    rows[#rows + 1] = row(name, s["service-status"] and s["service-status"].current or "", tostring(s.exposed == true),
      s.charm or "")
  end
  parts[#parts + 1] = tabwrite(rows)
  rows = { { "" }, row("[Units]"), row("ID\tSTATE\tVERSION\tMACHINE\tPORTS\tPUBLIC-ADDRESS") }
  each_unit(units_of(doc), function(name, u, level)
    rows[#rows + 1] = row(string.rep(" ", level * 2) .. name, u["agent-state"] or "", u["agent-version"] or "",
      u.machine or "", table.concat(u["open-ports"] or {}, ","), u["public-address"] or "")
  end)
  parts[#parts + 1] = tabwrite(rows)
  rows = { { "" }, row("[Machines]"), row("ID\tSTATE\tVERSION\tDNS\tINS-ID\tSERIES\tHARDWARE") }
  for _, id in ipairs(sorted_keys(doc.machines)) do
    local m = doc.machines[id]
    rows[#rows + 1] = row(id, m["agent-state"] or "", m["agent-version"] or "", m["dns-name"] or "",
      m["instance-id"] or "", m.series or "", m.hardware or "")
  end
  parts[#parts + 1] = tabwrite(rows)
  return table.concat(parts)
end

-- The /8-style network 1.25 printed for an address (the IPv4 default mask).
local function default_net(addr)
  if addr == "localhost" then addr = "127.0.0.1" end
  local a, b, c = addr:match("^(%d+)%.(%d+)%.(%d+)%.%d+$")
  if not a then return nil end
  a = tonumber(a)
  if a < 128 then return string.format("%d.0.0.0/8", a), a end
  if a < 192 then return string.format("%d.%s.0.0/16", a, b) end
  return string.format("%d.%s.%s.0/24", a, b, c)
end

local function summary(doc)
  local nets, seen = {}, {}
  local function track(addr)
    if not addr then return end
    local n = default_net(addr)
    -- 1.25 printed the first address of each network with the mask.
    if n and not seen[n] then
      seen[n] = true
      nets[#nets + 1] = (addr == "localhost" and "127.0.0.1" or addr) .. n:match("/%d+$")
    end
  end
  local machine_states, nmachines = {}, 0
  for _, id in ipairs(sorted_keys(doc.machines)) do
    local m = doc.machines[id]
    nmachines = nmachines + 1
    track(m["dns-name"])
    if m["agent-state"] then machine_states[m["agent-state"]] = (machine_states[m["agent-state"]] or 0) + 1 end
  end
  local unit_states, nunits, ports = {}, 0, {}
  each_unit(units_of(doc), function(_, u)
    nunits = nunits + 1
    track(u["public-address"])
    for _, p in ipairs(u["open-ports"] or {}) do ports[p] = true end
    local st = u["agent-state"] or ""
    unit_states[st] = (unit_states[st] or 0) + 1
  end)
  local port_list = sorted_keys(ports)
  local head = tabwrite({ row("Running on subnets:", table.concat(nets, ", ")),
    row("Utilizing ports:", table.concat(port_list, ", ")) })
  local rows = { row("# MACHINES:", string.format("(%d)", nmachines)) }
  for _, st in ipairs(sorted_keys(machine_states)) do rows[#rows + 1] = row(st .. ":", string.format(" %d ", machine_states[st])) end
  rows[#rows + 1] = row(" ")
  rows[#rows + 1] = row("# UNITS:", string.format("(%d)", nunits))
  for _, st in ipairs(sorted_keys(unit_states)) do rows[#rows + 1] = row(st .. ":", string.format(" %d ", unit_states[st])) end
  rows[#rows + 1] = row(" ")
  local services = sorted_keys(doc.services)
  rows[#rows + 1] = row("# SERVICES:", string.format(" (%d)", #services))
  for _, name in ipairs(services) do
    local exposed = doc.services[name].exposed == true and 1 or 0
    rows[#rows + 1] = row(name, string.format("%d/%d\texposed", exposed, 1))
  end
  return head .. tabwrite(rows, true)
end

local function oneline(doc)
  local out = {}
  for _, sname in ipairs(sorted_keys(doc.services)) do
    each_unit(doc.services[sname].units, function(name, u, level)
      out[#out + 1] = string.format("\n%s- %s: %s (%s)", string.rep(" ", level * 2), name, u["public-address"] or "",
        u["agent-state"] or "")
    end)
  end
  return table.concat(out)
end

--- The text `juju status --format fmt` prints for doc. As 1.25's cmd.Output,
--- non-empty output gets a final newline; yaml's own newline is kept single.
function M.format(doc, fmt)
  local text
  if fmt == "json" then
    text = json.encode(doc)
  elseif fmt == "tabular" then
    text = tabular(doc)
  elseif fmt == "summary" then
    text = summary(doc)
  elseif fmt == "oneline" or fmt == "short" or fmt == "line" then
    text = oneline(doc)
  else
    -- Without its final newlines (found from the end: the text is large
    -- for a large environment, and a pattern would walk all of it).
    text = yaml.encode(doc)
    local last = #text
    while last > 0 and text:byte(last) == 10 do last = last - 1 end
    text = text:sub(1, last)
  end
  if text == "" then return "" end
  return text .. "\n"
end

M.tabwrite = tabwrite

return M
