-- juju.version: version numbers, binary versions, series and architectures.
--
-- Grammar (spec 2.6): MAJOR.MINOR.PATCH[.BUILD] or MAJOR.MINOR-TAGPATCH[.BUILD];
-- binary version = <number>-<series>-<arch>.
local site = require("juju_site")

local M = {}

local Number = {}
Number.__index = Number

function Number:__tostring()
  local s
  if self.tag ~= "" then
    s = string.format("%d.%d-%s%d", self.major, self.minor, self.tag, self.patch)
  else
    s = string.format("%d.%d.%d", self.major, self.minor, self.patch)
  end
  if self.build > 0 then s = s .. "." .. self.build end
  return s
end

local function compare(a, b)
  for _, k in ipairs({ "major", "minor" }) do
    if a[k] ~= b[k] then return a[k] < b[k] and -1 or 1 end
  end
  -- A tagged version (1.25-beta1) sorts before the release (1.25.0) of the same minor.
  if a.tag ~= b.tag then
    if a.tag == "" then return 1 end
    if b.tag == "" then return -1 end
    return a.tag < b.tag and -1 or 1
  end
  for _, k in ipairs({ "patch", "build" }) do
    if a[k] ~= b[k] then return a[k] < b[k] and -1 or 1 end
  end
  return 0
end
M.compare = compare

Number.__eq = function(a, b) return compare(a, b) == 0 end
Number.__lt = function(a, b) return compare(a, b) < 0 end
Number.__le = function(a, b) return compare(a, b) <= 0 end

local function digits(s)
  return s and #s >= 1 and #s <= 9 and s:match("^%d+$") ~= nil
end

--- Parses a version number; returns a Number or nil, message.
function M.parse(s)
  if type(s) ~= "string" then return nil, string.format("invalid version %q", tostring(s)) end
  local major, minor, rest = s:match("^(%d+)%.(%d+)(.*)$")
  if not digits(major) or not digits(minor) then
    return nil, string.format("invalid version %q", s)
  end
  local tag, patch, build = "", nil, nil
  local p, b = rest:match("^%.(%d+)%.(%d+)$")
  if p then
    patch, build = p, b
  else
    p = rest:match("^%.(%d+)$")
    if p then
      patch = p
    else
      local t, tp, tb = rest:match("^%-([a-z]+)(%d+)%.(%d+)$")
      if not t then t, tp = rest:match("^%-([a-z]+)(%d+)$") end
      if t then tag, patch, build = t, tp, tb end
    end
  end
  if not digits(patch) or (build and not digits(build)) then
    return nil, string.format("invalid version %q", s)
  end
  return setmetatable({
    major = tonumber(major), minor = tonumber(minor), tag = tag,
    patch = tonumber(patch), build = tonumber(build or "0"),
  }, Number)
end

--- Parses a binary version NUMBER-SERIES-ARCH.
function M.parse_binary(s)
  if type(s) ~= "string" then return nil, string.format("invalid binary version %q", tostring(s)) end
  local num, series, arch = s:match("^(.+)%-([^-]+)%-([^-]+)$")
  if not num then return nil, string.format("invalid binary version %q", s) end
  local n = M.parse(num)
  if not n then return nil, string.format("invalid binary version %q", s) end
  return { number = n, series = series, arch = arch }
end

function M.format_binary(b)
  return string.format("%s-%s-%s", tostring(b.number), b.series, b.arch)
end

-- Up to 1.19.9 Juju's dev versions were the odd minors (0.1.0 included).
local SWITCH_OVER = { major = 1, minor = 19, tag = "", patch = 9, build = 0 }

--- A dev version has a tag or a build number; up to 1.19.9, an odd minor
--- or a build number (Juju's IsDev).
function M.is_dev(n)
  if compare(n, SWITCH_OVER) <= 0 then return n.minor % 2 == 1 or n.build > 0 end
  return n.tag ~= "" or n.build > 0
end

--- Equal ignoring the build number.
function M.compatible(a, b)
  return a.major == b.major and a.minor == b.minor and a.tag == b.tag and a.patch == b.patch
end

function M.with_build(n, build)
  local c = setmetatable({}, Number)
  for k, v in pairs(n) do c[k] = v end
  c.build = build
  return c
end

M.current = assert(M.parse(site.version))

-- Series known to the engine: name -> {os=, version=}. Ubuntu series versions
-- are the release numbers; other OSes use the series name (as Juju did for
-- CentOS and Windows) so simplestreams product ids stay unique.
local series_table = {
  precise = "12.04", quantal = "12.10", raring = "13.04", saucy = "13.10",
  trusty = "14.04", utopic = "14.10", vivid = "15.04", wily = "15.10",
  xenial = "16.04", bionic = "18.04", focal = "20.04", jammy = "22.04", noble = "24.04",
}
local lts = { "noble", "jammy", "focal", "bionic", "xenial", "trusty", "precise" }
local other_series = {
  buster = "debian", bullseye = "debian", bookworm = "debian", trixie = "debian",
  centos7 = "centos", arch = "arch",
  -- OS X, named as Juju's series table named it.
  sierra = "osx", elcapitan = "osx", yosemite = "osx", mavericks = "osx", mountainlion = "osx",
  lion = "osx", snowleopard = "osx", leopard = "osx", tiger = "osx", panther = "osx", jaguar = "osx",
  puma = "osx",
  win2012hvr2 = "windows", win2012hv = "windows", win2012r2 = "windows", win2012 = "windows",
  win7 = "windows", win8 = "windows", win81 = "windows", win10 = "windows",
}

-- Versions that are not the series name (Juju: "arch" -> "rolling").
local other_versions = { arch = "rolling" }

--- The OS of a series, or nil and Juju's message.
function M.series_os(series)
  if series == nil or series == "" then return nil, string.format("series %q not valid", series or "") end
  if series_table[series] then return "ubuntu" end
  if other_series[series] then return other_series[series] end
  return nil, string.format("unknown OS for series: %q", tostring(series))
end

--- The version of a series (Ubuntu: 14.04; others their name), or nil and
--- Juju's message.
function M.series_version(series)
  if series == nil or series == "" then return nil, string.format("series %q not valid", series or "") end
  if series_table[series] then return series_table[series] end
  if other_series[series] then return other_versions[series] or series end
  return nil, string.format("unknown version for series: %q", tostring(series))
end

function M.valid_series_name(s)
  return type(s) == "string" and s:match("^[a-z]+[a-z0-9]*$") ~= nil
end

--- All known series of one OS, sorted.
function M.os_series(os_name)
  local out = {}
  for s in pairs(series_table) do if os_name == "ubuntu" then out[#out + 1] = s end end
  for s, o in pairs(other_series) do if o == os_name then out[#out + 1] = s end end
  table.sort(out)
  return out
end

function M.latest_lts() return lts[1] end

M.arches = { "amd64", "i386", "armhf", "arm64", "ppc64el", "s390x" }

function M.valid_arch(a)
  for _, x in ipairs(M.arches) do if x == a then return true end end
  return false
end

--- The host's series and OS from os-release (Debian: codename, "debian").
function M.host_series(sys)
  local rel = sys.os_release()
  if not rel then return "unknown", "unknown" end
  local series = rel.VERSION_CODENAME or rel.UBUNTU_CODENAME
  local os_name = rel.ID or "unknown"
  if not series or series == "" then
    if os_name == "centos" then series = "centos" .. (rel.VERSION_ID or "") else series = "unknown" end
  end
  return series, os_name
end

return M
