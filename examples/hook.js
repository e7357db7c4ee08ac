// A pre-upgrade hook: call cb(err) to veto the upgrade, cb() to allow it.
module.exports = function (data, cb) {
  console.log('upgrading to', data.target)
  cb()
}
