-- Specs for juju.simplestreams against juju 1.25's own test data
-- (shared/conformance/simplestreams): the canned "test:" data source, the
-- tools-tests files, the marshal expectations (byte-exact) and a file://
-- tree written by write_metadata and read back by find_tools.
local simplestreams = require("juju.simplestreams")
local json = require("juju.json")
local fs = require("juju.fs")
local helpers = require("helpers")

local CONF = helpers.shared_dir .. "/conformance/simplestreams"
local CANNED = CONF .. "/juju-1.25-testing-canned"

local function read(path)
  return assert(fs.read_file(path))
end

-- The canned data source of juju's simplestreams testing package: URL path
-- "/streams/v1/x:y.json" is the file "streams__v1__x_y.json".
local function canned_fetcher(log)
  return function(url)
    log[#log + 1] = url
    local path = url:match("^test:/(.*)$")
    if not path then return nil, "not found: " .. url, "ENOENT" end
    local name = path:gsub("/", "__"):gsub(":", "_")
    local text = fs.read_file(CANNED .. "/" .. name)
    if not text then return nil, "not found: " .. url, "ENOENT" end
    return text
  end
end

-- A fetcher serving an in-memory map url -> text.
local function map_fetcher(files, log)
  return function(url)
    if log then log[#log + 1] = url end
    if files[url] then return files[url] end
    return nil, "404 Not Found: " .. url, "ENOENT"
  end
end

local function binaries(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = t.binary end
  return out
end

local function find_canned(constraint, opts)
  local log = {}
  opts = opts or {}
  opts.fetch = canned_fetcher(log)
  local found, err, code = simplestreams.find_tools({ { url = "test:", description = "test" } }, constraint, opts)
  return found, err, code, log
end

-- Strips trailing blanks per line (the Go literals of the index
-- expectations carry some after the last product id).
local function rstrip_lines(s)
  return (s:gsub("[ \t]+\n", "\n"))
end

local function marshal_inputs()
  local inputs = assert(json.decode(read(CONF .. "/juju-1.25-marshal-expected/_inputs.json")))
  return { released = inputs.released, proposed = inputs.proposed }
end

describe("juju.simplestreams", function()
  after_each(function()
    helpers.cleanup()
    collectgarbage()
    collectgarbage()
  end)

  describe("find_tools on juju's canned test data source", function()
    it("falls back from index2.json to the legacy index.json and resolves tools URLs", function()
      local found, err, _, log = find_canned({ version = "1.13.0", series = { "precise" }, arches = { "amd64", "arm" } })
      assert.is_nil(err)
      assert.are.same({ "1.13.0-precise-amd64" }, binaries(found))
      local t = found[1]
      assert.are.equal("test:/tools/released/20130806/juju-1.13.0-precise-amd64.tgz", t.url)
      assert.are.equal(2973595, t.size)
      assert.are.equal("447aeb6a934a5eaec4f703eda4ef2dde", t.sha256)
      assert.are.equal("precise", t.series)
      assert.are.equal("amd64", t.arch)
      assert.are.equal("1.13.0", t.version)
      assert.are.equal("test:/streams/v1/index2.json", log[1])
      assert.are.equal("test:/streams/v1/index.json", log[2])
      assert.are.equal("test:/streams/v1/tools_metadata.json", log[3])
      assert.are.equal(3, #log) -- no region: no mirror lookup, no .sjson
    end)

    it("matches by major version with any minor, sorted by binary version", function()
      local found = find_canned({ major = 1, minor = -1, series = { "raring" }, arches = { "amd64", "arm" } })
      assert.are.same({ "1.11.4-raring-arm", "1.13.0-raring-amd64", "1.14.0-raring-amd64" }, binaries(found))
    end)

    it("reads older version collections without overriding newer ones", function()
      local found = find_canned({ major = 1, minor = 11, series = { "precise" }, arches = { "amd64", "arm" } })
      assert.are.same({ "1.11.4-precise-arm", "1.11.5-precise-arm" }, binaries(found))
      -- 1.11.4 is in both 20130806 and 20130803: the newer collection's wins
      assert.are.equal(1951096, found[1].size)
      assert.are.equal("test:/tools/released/20130806/juju-1.11.4-precise-arm.tgz", found[1].url)
      assert.are.equal("test:/tools/released/20130803/juju-1.11.5-precise-arm.tgz", found[2].url)
    end)

    it("filters by major version, series and arch", function()
      local found = find_canned({ major = 2, series = { "precise", "raring" }, arches = { "amd64", "arm" } })
      assert.are.same({ "2.0.1-precise-arm", "2.0.1-raring-arm" }, binaries(found))
      found = find_canned({ major = 1, series = { "precise", "raring" }, arches = { "amd64" } })
      assert.are.same({ "1.13.0-precise-amd64", "1.13.0-raring-amd64", "1.14.0-raring-amd64" }, binaries(found))
      found = find_canned({ major = 1, minor = 14, series = { "raring", "trusty" } })
      assert.are.same({ "1.14.0-raring-amd64" }, binaries(found)) -- default arches
    end)

    it("selects the stream by content id", function()
      local found = find_canned({ stream = "testing", version = "1.16.0", series = { "trusty" }, arches = { "amd64" } })
      assert.are.same({ "1.16.0-trusty-amd64" }, binaries(found))
      assert.are.equal("test:/tools/testing/20130806/juju-1.16.0-trusty-amd64.tgz", found[1].url)
      local none, err, code = find_canned({ stream = "devel", major = 1, series = { "trusty" } })
      assert.is_nil(none)
      assert.are.equal("ENOENT", code)
      -- Juju 1.25's text (environs/simplestreams GetProductsPath), then the content id.
      assert.matches('"content-download" data not found (index ', err, 1, true)
      assert.matches('has no "com.ubuntu.juju:devel:tools" entry)', err, 1, true)
    end)

    it("follows mirrors.json to a mirror for the wanted cloud", function()
      local found, _, _, log = find_canned({ version = "1.13.0", series = { "precise" }, arches = { "amd64" } },
        { region = "us-west-2", endpoint = "https://ec2.us-west-2.amazonaws.com" })
      assert.are.same({ "1.13.0-precise-amd64" }, binaries(found))
      assert.are.equal("test:/mirrored-path/juju-1.13.0-precise-amd64.tgz", found[1].url)
      assert.are.equal(2973595, found[1].size)
      assert.are.equal("test:/streams/v1/mirrors.json", log[3])
      assert.are.equal("test:/streams/v1/tools_metadata:public-mirrors.json", log[4])
      -- no mirror for this cloud: the source's own products file
      found = find_canned({ version = "1.13.0", series = { "precise" }, arches = { "amd64" } },
        { region = "us-east-1", endpoint = "https://ec2.us-east-1.amazonaws.com" })
      assert.are.equal("test:/tools/released/20130806/juju-1.13.0-precise-amd64.tgz", found[1].url)
    end)

    it("reports ENOENT with the constraint when nothing matches", function()
      local found, err, code = find_canned({ major = 3, series = { "precise" } })
      assert.is_nil(found)
      assert.are.equal("ENOENT", code)
      assert.are.equal('no tools metadata found for version 3.* in stream "released": test: no matching tools in test:', err)
    end)
  end)

  describe("find_tools on the tools-tests files", function()
    it("reads the old layout (release and arch at product level)", function()
      local base = "http://tools.example/juju/"
      local files = {
        [base .. "streams/v1/index.json"] = read(CONF .. "/juju-1.25-tools-tests/unsignedIndex.json"),
        [base .. "streams/v1/tools_metadata.json"] = read(CONF .. "/juju-1.25-tools-tests/unsignedProduct.json"),
      }
      local found, err = simplestreams.find_tools({ { url = base } },
        { major = 1, minor = 13, series = { "precise" }, arches = { "amd64" } }, { fetch = map_fetcher(files) })
      assert.is_nil(err)
      assert.are.same({ "1.13.0-precise-amd64" }, binaries(found))
      assert.are.equal(base .. "tools/releases/20130806/juju-1.13.0-precise-amd64.tgz", found[1].url)
      assert.are.equal(2973595, found[1].size)
    end)

    it("keeps size 9223372036854775807 (TestLargeNumber)", function()
      local doc = assert(json.decode(read(CONF .. "/juju-1.25-tools-tests/TestLargeNumber-products.json")))
      local item = doc.products["com.ubuntu.juju:1.10.0:amd64"].versions["20133008"].items["1.10.0-precise-amd64"]
      assert.are.equal(math.maxinteger, item.size)
      assert.are.equal("integer", math.type(item.size))
      assert.matches('"size":9223372036854775807', json.encode(doc), 1, true)
    end)
  end)

  describe("find_tools across sources", function()
    local index2 = [[{"index":{"com.ubuntu.juju:released:tools":{"updated":"x","format":"products:1.0",
      "datatype":"content-download","path":"streams/v1/p.json","products":["com.ubuntu.juju:14.04:amd64"]}},
      "updated":"x","format":"index:1.0"}]]
    local function products(v)
      return string.format([[{"products":{"com.ubuntu.juju:14.04:amd64":{"version":"%s","arch":"amd64",
        "versions":{"20150101":{"items":{"%s-trusty-amd64":{"release":"trusty","version":"%s","arch":"amd64",
        "size":42,"path":"released/juju-%s-trusty-amd64.tgz","ftype":"tar.gz","sha256":"ab"}}}}}},
        "updated":"x","format":"products:1.0","content_id":"com.ubuntu.juju:released:tools"}]], v, v, v, v)
    end

    it("prefers index2.json over index.json", function()
      local log = {}
      local files = {
        ["http://a/streams/v1/index2.json"] = index2,
        ["http://a/streams/v1/index.json"] = index2:gsub("p%.json", "legacy.json"),
        ["http://a/streams/v1/p.json"] = products("1.25.0"),
      }
      local found = simplestreams.find_tools({ { url = "http://a" } }, { major = 1, minor = 25, series = { "trusty" } },
        { fetch = map_fetcher(files, log) })
      assert.are.same({ "1.25.0-trusty-amd64" }, binaries(found))
      assert.are.same({ "http://a/streams/v1/index2.json", "http://a/streams/v1/p.json" }, log)
    end)

    it("uses the first source that yields tools, skipping broken ones", function()
      local files = {
        ["http://bad/streams/v1/index2.json"] = '{"index": {,}}',
        ["http://empty/streams/v1/index2.json"] = index2,
        ["http://empty/streams/v1/p.json"] = products("1.24.0"),
        ["http://good/streams/v1/index2.json"] = index2,
        ["http://good/streams/v1/p.json"] = products("1.25.1"),
        ["http://later/streams/v1/index2.json"] = index2,
        ["http://later/streams/v1/p.json"] = products("1.25.2"),
      }
      local sources = { { url = "http://bad" }, { url = "http://missing" }, { url = "http://empty" },
        { url = "http://good" }, { url = "http://later" } }
      local found = simplestreams.find_tools(sources, { major = 1, minor = 25, series = { "trusty" } },
        { fetch = map_fetcher(files) })
      assert.are.same({ "1.25.1-trusty-amd64" }, binaries(found))
      assert.are.equal("http://good/released/juju-1.25.1-trusty-amd64.tgz", found[1].url)
    end)

    it("names the URL and position of invalid JSON, with its code", function()
      local files = { ["http://bad/streams/v1/index2.json"] = '{\n "index": {,}}' }
      local found, err, code = simplestreams.find_tools({ { url = "http://bad", description = "agent-metadata-url" } },
        { major = 1, series = { "trusty" } }, { fetch = map_fetcher(files) })
      assert.is_nil(found)
      assert.are.equal("EINVAL", code)
      assert.matches("agent-metadata-url: invalid JSON in http://bad/streams/v1/index2.json:2:12: "
        .. "invalid character ',' looking for beginning of object key string", err, 1, true)
    end)

    it("reports missing metadata everywhere as ENOENT naming every place looked at", function()
      local found, err, code = simplestreams.find_tools({ { url = "http://one" }, { url = "file:///nowhere/tools", description = "local" } },
        { major = 1, series = { "trusty" } }, { fetch = map_fetcher({}) })
      assert.is_nil(found)
      assert.are.equal("ENOENT", code)
      assert.matches("http://one: no tools metadata index at http://one/streams/v1/index2.json or "
        .. "http://one/streams/v1/index.json", err, 1, true)
      assert.matches("local: no tools metadata index at file:///nowhere/tools/streams/v1/index2.json", err, 1, true)
      found, err, code = simplestreams.find_tools({}, { major = 1 }, { fetch = map_fetcher({}) })
      assert.is_nil(found)
      assert.are.equal("ENOENT", code)
      assert.matches("no tools sources", err, 1, true)
    end)

    it("rejects an index of the wrong format", function()
      local files = { ["http://a/streams/v1/index2.json"] = '{"format":"index:2.0","index":{}}' }
      local _, err, code = simplestreams.find_tools({ { url = "http://a" } }, { major = 1 }, { fetch = map_fetcher(files) })
      assert.are.equal("EINVAL", code)
      assert.matches('unexpected index file format "index:2.0", expected "index:1.0"', err, 1, true)
    end)

    it("raises on misuse", function()
      assert.has_error(function() simplestreams.find_tools(nil, { major = 1 }) end)
      assert.has_error(function() simplestreams.find_tools({}, nil) end)
      assert.has_error(function() simplestreams.find_tools({ {} }, { major = 1 }) end)
      assert.has_error(function() simplestreams.find_tools({}, { series = { "trusty" } }) end)
      assert.has_error(function() simplestreams.find_tools({}, { major = 1 }, { fetch = "x" }) end)
      assert.has_error(function() simplestreams.find_tools({}, { version = "nope" }) end)
    end)
  end)

  describe("marshal", function()
    local expected_dir = CONF .. "/juju-1.25-marshal-expected/"

    it("writes juju 1.25's product files byte for byte", function()
      local files = simplestreams.marshal(marshal_inputs(), nil, 0)
      assert.are.equal(read(expected_dir .. "com.ubuntu.juju-released-tools.json"),
        files["streams/v1/com.ubuntu.juju-released-tools.json"])
      assert.are.equal(read(expected_dir .. "com.ubuntu.juju-proposed-tools.json"),
        files["streams/v1/com.ubuntu.juju-proposed-tools.json"])
    end)

    it("writes index2.json and the released-only legacy index.json", function()
      local files = simplestreams.marshal(marshal_inputs(), nil, 0)
      assert.are.equal(rstrip_lines(read(expected_dir .. "index2.json")), files["streams/v1/index2.json"])
      assert.are.equal(rstrip_lines(read(expected_dir .. "index.json")), files["streams/v1/index.json"])
      -- and JSON-equivalent to the untouched expectations
      assert.are.same(json.decode(read(expected_dir .. "index2.json")), json.decode(files["streams/v1/index2.json"]))
      local n = 0
      for _ in pairs(files) do n = n + 1 end
      assert.are.equal(4, n)
    end)

    it("omits the legacy index without a released stream, and product files of unlisted streams", function()
      local inputs = marshal_inputs()
      local files = simplestreams.marshal({ proposed = inputs.proposed }, nil, 0)
      assert.is_nil(files["streams/v1/index.json"])
      assert.is_not_nil(files["streams/v1/index2.json"])
      files = simplestreams.marshal(inputs, { "released" }, 0)
      assert.is_nil(files["streams/v1/com.ubuntu.juju-proposed-tools.json"])
      assert.matches("com.ubuntu.juju:proposed:tools", files["streams/v1/index2.json"], 1, true)
    end)

    it("stamps the given time in RFC 1123 with a numeric zone and a YYYYMMDD version key", function()
      local files = simplestreams.marshal({ released = { { release = "trusty", version = "1.25.0", arch = "amd64",
        size = 1, path = "released/juju-1.25.0-trusty-amd64.tgz", sha256 = "x" } } }, nil, 1445545542)
      local text = files["streams/v1/com.ubuntu.juju-released-tools.json"]
      assert.matches('"updated": "Thu, 22 Oct 2015 20:25:42 +0000"', text, 1, true)
      assert.matches('"20151022": {', text, 1, true)
      assert.matches('"ftype": "tar.gz"', text, 1, true)
    end)
  end)

  describe("write_metadata", function()
    local records = {
      released = {
        { series = "trusty", version = "1.25.0", arch = "amd64", size = math.maxinteger,
          path = "released/juju-1.25.0-trusty-amd64.tgz", sha256 = "aa" },
        { series = "precise", version = "1.25.0", arch = "amd64", size = 7,
          path = "released/juju-1.25.0-precise-amd64.tgz", sha256 = "bb" },
        { series = "nosuchseries", version = "1.25.0", arch = "amd64", size = 7, path = "x.tgz" },
      },
      devel = {
        { series = "trusty", version = "1.26-beta1", arch = "arm64", size = 9,
          path = "devel/juju-1.26-beta1-trusty-arm64.tgz", sha256 = "cc" },
      },
    }

    it("writes a file:// tree that find_tools reads back", function()
      local dir = helpers.tmpdir("juju-ss-")
      local written = assert(simplestreams.write_metadata(dir, records, nil, { updated = 0 }))
      assert.are.same({ "tools/streams/v1/com.ubuntu.juju-devel-tools.json",
        "tools/streams/v1/com.ubuntu.juju-released-tools.json",
        "tools/streams/v1/index2.json", "tools/streams/v1/index.json" }, written)
      local source = { { url = "file://" .. dir .. "/tools", description = "local" } }
      -- the default fetcher (juju.http, or juju.fs for file://)
      local found, err = simplestreams.find_tools(source, { major = 1, minor = 25, series = { "trusty", "precise" } })
      assert.is_nil(err)
      assert.are.same({ "1.25.0-precise-amd64", "1.25.0-trusty-amd64" }, binaries(found))
      assert.are.equal("file://" .. dir .. "/tools/released/juju-1.25.0-trusty-amd64.tgz", found[2].url)
      assert.are.equal(math.maxinteger, found[2].size)
      assert.are.equal("aa", found[2].sha256)
      found = simplestreams.find_tools(source, { stream = "devel", major = 1, series = { "trusty" }, arches = { "arm64" } })
      assert.are.same({ "1.26-beta1-trusty-arm64" }, binaries(found))
      local none, _, code = simplestreams.find_tools(source, { stream = "devel", major = 1, series = { "precise" } })
      assert.is_nil(none)
      assert.are.equal("ENOENT", code)
    end)

    it("reads file:// with juju.fs when juju.http is unavailable", function()
      local dir = helpers.tmpdir("juju-ss-")
      assert(simplestreams.write_metadata(dir, records, { "released" }, { updated = 0 }))
      local saved = package.loaded["juju.http"]
      package.loaded["juju.http"] = nil
      package.preload["juju.http"] = function() error("juju.http is not built") end
      local ok, found, err = pcall(simplestreams.find_tools, { { url = "file://" .. dir .. "/tools" }, { url = "http://x" } },
        { major = 1, series = { "trusty" } })
      package.preload["juju.http"] = nil
      package.loaded["juju.http"] = saved
      assert.is_true(ok, found)
      assert.is_nil(err)
      assert.are.same({ "1.25.0-trusty-amd64" }, binaries(found))
      local _, err2, code = simplestreams.find_tools({ { url = "file://" .. dir .. "/none" } }, { major = 1 })
      assert.are.equal("ENOENT", code)
      assert.matches("no tools metadata index", err2, 1, true)
    end)

    it("puts the files into a storage, product files before the indexes", function()
      local puts = {}
      local storage = { put = function(_, name, data) puts[#puts + 1] = { name, data }; return true end }
      assert(simplestreams.write_metadata(storage, { released = records.released }, { "released" }, { updated = 0 }))
      assert.are.equal("tools/streams/v1/com.ubuntu.juju-released-tools.json", puts[1][1])
      assert.are.equal("tools/streams/v1/index2.json", puts[2][1])
      assert.are.equal("tools/streams/v1/index.json", puts[3][1])
      assert.are.equal(3, #puts)
      local failing = { put = function() return nil, "disk full", "EIO" end }
      local ok, err, code = simplestreams.write_metadata(failing, records, nil, { updated = 0 })
      assert.is_nil(ok)
      assert.are.equal("EIO", code)
      assert.matches("cannot write tools metadata tools/streams/v1/com.ubuntu.juju-devel-tools.json: disk full", err, 1, true)
      assert.has_error(function() simplestreams.write_metadata(42, records) end)
    end)
  end)

  -- Image metadata (image-ids), Juju 1.25's canned test data.
  describe("find_images", function()
    local function find(want)
      local log = {}
      local found, err, code = simplestreams.find_images({ { url = "test:" } }, want, { fetch = canned_fetcher(log) })
      return found, err, code, log
    end
    local function ids(list)
      local out = {}
      for i, r in ipairs(list) do out[i] = r.id .. " " .. r.version .. " " .. tostring(r.root_store) end
      return out
    end

    it("finds the region's images of the series and arch, newest first, with inherited attributes", function()
      local found = assert(find { series = "precise", arches = { "amd64" }, region = "us-east-1",
        endpoint = "https://ec2.us-east-1.amazonaws.com" })
      assert.are.same({ "ami-442ea674 20121218 ebs", "ami-442ea684 20111111 instance" }, ids(found))
      assert.are.equal("hvm", found[1].virt)
      assert.are.equal("amd64", found[1].arch)
    end)

    it("reads only the products files the index names for the cloud", function()
      -- image_metadata.json has au-east-1 images, but the index lists it for us-east-1 only.
      local found, err, code, log = find { series = "precise", arches = { "amd64" }, region = "au-east-1",
        endpoint = "https://somewhere" }
      assert.is_nil(found)
      assert.are.equal("ENOENT", code, err)
      for _, url in ipairs(log) do assert.is_nil(url:find("image_metadata", 1, true), url) end
    end)

    it("names the series, arches and region when nothing matches", function()
      local found, err, code = find { series = "precise", arches = { "arm64" }, region = "us-east-1",
        endpoint = "https://ec2.us-east-1.amazonaws.com" }
      assert.is_nil(found)
      assert.are.equal('no "precise" images in us-east-1 with arches [arm64]', err)
      assert.are.equal("ENOENT", code)
      assert.is_nil(simplestreams.image_product_id("released", "nosuchseries", "amd64"))
      assert.are.equal("com.ubuntu.cloud.daily:server:14.04:amd64",
        simplestreams.image_product_id("daily", "trusty", "amd64"))
    end)
  end)
end)
