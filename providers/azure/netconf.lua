-- providers/azure/netconf.lua: the subscription's network configuration
-- document (GET/PUT <sub>/services/networking/media) edited by
-- read-modify-write as text, so every byte outside juju's own
-- VirtualNetworkSite stays as it was. A concurrent change is detected
-- (the document re-read just before the PUT differs, or the PUT's
-- If-Match on the ETag fails) and the edit is redone on the fresh
-- document; nothing another writer put there is overwritten.
local xml = require("juju.lazy")("juju.xml")

local M = {}

M.NS = "http://schemas.microsoft.com/ServiceHosting/2011/07/NetworkConfiguration"
M.PATH = "/services/networking/media"
M.TRIES = 4
M.PREFIX = "10.0.0.0/8"

local function site_xml(name, location)
  return string.format('<VirtualNetworkSite name="%s" Location="%s"><AddressSpace><AddressPrefix>%s</AddressPrefix>'
    .. '</AddressSpace></VirtualNetworkSite>', xml.escape(name, true), xml.escape(location, true), M.PREFIX)
end

local function has_site(doc, name)
  local root = xml.decode(doc, "network configuration")
  if not root then return false end
  local function walk(e)
    if e.name == "VirtualNetworkSite" and e.attrs and e.attrs.name == name then return true end
    for _, c in ipairs(e.children or {}) do if walk(c) then return true end end
    return false
  end
  return walk(root)
end
M.has_site = has_site

local function last_find(s, pat)
  local at
  local i = 1
  while true do
    local a = s:find(pat, i, true)
    if not a then return at end
    at, i = a, a + 1
  end
end

--- doc (or nil: no configuration yet) with the site added; the same doc
--- when the site is there (Juju tolerated "already exists"); nil, message
--- when the document has a form this edit does not know.
function M.add_site(doc, name, location)
  local site = site_xml(name, location)
  if doc == nil then
    return '<NetworkConfiguration xmlns="' .. M.NS .. '"><VirtualNetworkConfiguration><VirtualNetworkSites>' .. site
      .. '</VirtualNetworkSites></VirtualNetworkConfiguration></NetworkConfiguration>'
  end
  if not xml.decode(doc, "network configuration") then
    return nil, "the subscription's network configuration is not XML"
  end
  if has_site(doc, name) then return doc, "exists" end
  local at = last_find(doc, "</VirtualNetworkSites>")
  if at then return doc:sub(1, at - 1) .. site .. doc:sub(at) end
  local a, b = doc:find("<VirtualNetworkSites%s*/>")
  if a then return doc:sub(1, a - 1) .. "<VirtualNetworkSites>" .. site .. "</VirtualNetworkSites>" .. doc:sub(b + 1) end
  at = last_find(doc, "</VirtualNetworkConfiguration>")
  if at then return doc:sub(1, at - 1) .. "<VirtualNetworkSites>" .. site .. "</VirtualNetworkSites>" .. doc:sub(at) end
  at = last_find(doc, "</NetworkConfiguration>")
  if at then
    return doc:sub(1, at - 1) .. "<VirtualNetworkConfiguration><VirtualNetworkSites>" .. site
      .. "</VirtualNetworkSites></VirtualNetworkConfiguration>" .. doc:sub(at)
  end
  return nil, "the network configuration has no NetworkConfiguration element juju can extend (namespace prefix?)"
end

--- doc without the site (its element exactly; nothing else touched);
--- the same doc when it has none.
function M.remove_site(doc, name)
  if doc == nil or not has_site(doc, name) then return doc, "absent" end
  local a = doc:find('<VirtualNetworkSite name="' .. xml.escape(name, true) .. '"', 1, true)
  if not a then return nil, "virtual network " .. name .. " is in a form juju did not write; remove it by hand" end
  local _, e = doc:find("</VirtualNetworkSite>", a, true)
  if not e then return nil, "unterminated VirtualNetworkSite " .. name end
  return doc:sub(1, a - 1) .. doc:sub(e + 1)
end

local function read(env)
  local resp, msg, code = env.mgmt:call("GET", M.PATH)
  if not resp then
    if code == "NOT_FOUND" then return false end
    return nil, "cannot read the network configuration: " .. tostring(msg), code
  end
  return resp.body, resp.headers.etag
end

--- Read-modify-write with change(doc) -> new doc | doc unchanged, "exists"/"absent" | nil, message.
function M.edit(env, change)
  local last
  for try = 1, M.TRIES do
    local doc, etag = read(env)
    if doc == nil then return nil, etag end
    doc = doc or nil
    local new, why = change(doc)
    if new == doc then return true end -- nothing to do (also: no document, nothing to remove)
    if new == nil then return nil, why end
    -- re-read: another writer between our read and now?
    local again, etag2 = read(env)
    if again == nil then return nil, etag2 end
    again = again or nil
    if again ~= doc or etag2 ~= etag then
      last = "the network configuration changed while juju edited it"
      env.ctx.log:infof("network configuration changed concurrently (try %d): redoing the edit", try)
    else
      local resp, msg, code, eresp = env.mgmt:call_async(env, "PUT", M.PATH, { body = new,
        ctype = "application/octet-stream", headers = { ["If-Match"] = etag } }, "for the network configuration")
      if resp then return true end
      if not (eresp and eresp.status == 412) then return nil, msg, code end
      last = "the network configuration changed while juju edited it (If-Match failed)"
      env.ctx.log:infof("network configuration changed concurrently (try %d, 412): redoing the edit", try)
    end
  end
  return nil, last .. "; gave up after " .. M.TRIES .. " tries without overwriting it", "CONFLICT"
end

return M
