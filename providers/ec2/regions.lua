-- ec2.regions: Juju 1.25's EC2 region table (provider/ec2/config.go,
-- aws.Regions of gopkg.in/amz.v3): a region name -> its EC2 and S3
-- endpoints. S3 outside us-east-1 wants a LocationConstraint at bucket
-- creation (juju.cloud.storage.s3 sends it for any other region).
local M = {}

local function aws(region, s3)
  return { ec2 = "https://ec2." .. region .. ".amazonaws.com", s3 = s3 or ("https://s3-" .. region .. ".amazonaws.com") }
end

M.REGIONS = {
  ["ap-northeast-1"] = aws("ap-northeast-1"),
  ["ap-southeast-1"] = aws("ap-southeast-1"),
  ["ap-southeast-2"] = aws("ap-southeast-2"),
  ["eu-central-1"] = aws("eu-central-1", "https://s3.eu-central-1.amazonaws.com"),
  ["eu-west-1"] = aws("eu-west-1"),
  ["sa-east-1"] = aws("sa-east-1"),
  ["us-east-1"] = aws("us-east-1", "https://s3.amazonaws.com"),
  ["us-west-1"] = aws("us-west-1"),
  ["us-west-2"] = aws("us-west-2"),
  ["cn-north-1"] = { ec2 = "https://ec2.cn-north-1.amazonaws.com.cn", s3 = "https://s3.cn-north-1.amazonaws.com.cn" },
  ["us-gov-west-1"] = { ec2 = "https://ec2.us-gov-west-1.amazonaws.com",
    s3 = "https://s3-fips-us-gov-west-1.amazonaws.com" },
}

--- The known region names, sorted.
function M.names()
  local out = {}
  for k in pairs(M.REGIONS) do out[#out + 1] = k end
  table.sort(out)
  return out
end

return M
