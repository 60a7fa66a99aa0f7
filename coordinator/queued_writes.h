// What the connections of both front ends share (coordinator/http_server.cc,
// coordinator/native_server.cc; internal to coordinator/): PeerAddress for their logs, and
// QueuedWrites, their write side.
//
// Byte strings go out in order, one async_write at a time, each within the service's write
// timeout; a client that stops reading is closed ("write timeout: the client does not read").
// A string queued as `final` is the last of an engine reply: once it is on the wire, one reply
// the connection owes is settled in ServiceCore::pending_replies(), which the flush at shutdown
// waits for (what is still owed when the connection dies is settled by SettleReplies()).
//
// CRTP: `Conn` derives from QueuedWrites<Conn>, befriends it, and has socket_, write_timer_,
// core_, closed_, Close(const std::string& why) and OnWritesDrained() (called when the queue
// empties). Everything runs on the connection's strand.
//
// Tested through tests/cli/service_test.sh (slow readers, write timeouts, shutdown flush).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include "coordinator/service_core.h"

namespace sieve::coordinator {

// "address:port" of the socket's peer, for logs ("?" once it is gone).
inline std::string PeerAddress(const boost::asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  return ec ? "?" : peer.address().to_string() + ":" + std::to_string(peer.port());
}

template <typename Conn>
class QueuedWrites {
 protected:
  // Queues `bytes` (dropped once the connection is closed) and starts writing if idle.
  void QueueBytes(std::string bytes, bool final = false) {
    if (self().closed_) return;
    out_.push_back({std::move(bytes), final});
    if (!writing_) WriteFront();
  }
  // The last queued string ends an engine reply.
  void MarkLastFinal() {
    if (!out_.empty()) out_.back().final = true;
  }
  // An engine reply this connection will write (counted in ServiceCore::pending_replies()).
  void OweReply() {
    ++owed_;
    self().core_.pending_replies().fetch_add(1);
  }
  // Settles every reply still owed (the connection is going away).
  void SettleReplies() {
    if (owed_ > 0) self().core_.pending_replies().fetch_sub(owed_);
    owed_ = 0;
  }
  bool writing() const { return writing_; }
  bool writes_idle() const { return !writing_ && out_.empty(); }
  void DropWrites() { out_.clear(); }

 private:
  struct Outgoing {
    std::string bytes;
    bool final = false;  // the last bytes of an engine reply
  };

  Conn& self() { return static_cast<Conn&>(*this); }

  void WriteFront() {
    Conn& c = self();
    writing_ = true;
    c.write_timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(c.core_.options().write_timeout_s)));
    c.write_timer_.async_wait([conn = c.shared_from_this()](boost::system::error_code ec) {
      if (!ec && conn->writing_) conn->Close("write timeout: the client does not read");
    });
    boost::asio::async_write(c.socket_, boost::asio::buffer(out_.front().bytes),
                             [conn = c.shared_from_this()](boost::system::error_code ec, size_t) {
                               conn->OnWritten(ec);
                             });
  }

  void OnWritten(boost::system::error_code ec) {
    Conn& c = self();
    writing_ = false;
    c.write_timer_.cancel();
    if (c.closed_) return;
    if (ec) return c.Close("write failed: " + ec.message());
    if (out_.front().final && owed_ > 0) {
      --owed_;
      c.core_.pending_replies().fetch_sub(1);
    }
    out_.pop_front();
    if (!out_.empty()) return WriteFront();
    c.OnWritesDrained();
  }

  std::deque<Outgoing> out_;
  bool writing_ = false;
  int64_t owed_ = 0;  // engine replies accepted and not yet written
};

}  // namespace sieve::coordinator
