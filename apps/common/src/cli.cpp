#include "appcommon/cli.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <new>

namespace appcommon {

int run_main(const std::function<int()>& body) {
    try {
        return body();
    } catch (const UsageError& e) {
        std::fprintf(stderr, "error: %s (see --help)\n", e.message.c_str());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

namespace {

double monotonic_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string format_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 1e8) return "?";
    const long long s = static_cast<long long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
}

Progress::Progress(size_t total, std::string unit)
    : Progress(total, std::move(unit), stderr, stderr_is_terminal(), monotonic_seconds) {}

Progress::Progress(size_t total, std::string unit, std::FILE* out, bool terminal, std::function<double()> clock,
                   double interval)
    : total_(total), unit_(std::move(unit)), out_(out), terminal_(terminal), clock_(std::move(clock)),
      interval_(interval) {
    start_ = last_print_ = clock_();
}

void Progress::step(const std::string& label) { set(current_ + 1, label); }

void Progress::set(size_t done, const std::string& label) {
    current_ = done;
    show(label);
}

void Progress::show(const std::string& label) {
    const double now = clock_();
    const double elapsed = now - start_;
    const double rate = elapsed > 0 ? static_cast<double>(current_) / elapsed : 0;
    const double pct = total_ ? 100.0 * static_cast<double>(current_) / static_cast<double>(total_) : 100.0;
    const std::string eta = rate > 0 && total_ >= current_ ? format_duration((total_ - current_) / rate) : "?";
    if (terminal_) {
        std::fprintf(out_, "\r\033[K[%4zu/%4zu] %5.1f%%  %.1f %s/s  %s elapsed  ETA %s  %s", current_, total_, pct, rate,
                     unit_.c_str(), format_duration(elapsed).c_str(), eta.c_str(), label.c_str());
        std::fflush(out_);
        drawn_ = true;
        return;
    }
    if (now - last_print_ < interval_ || current_ >= total_) return;  // the final report says the rest
    last_print_ = now;
    std::fprintf(out_, "progress: %zu/%zu %s (%.1f%%), %.1f %s/s, %s elapsed, ETA %s\n", current_, total_, unit_.c_str(),
                 pct, rate, unit_.c_str(), format_duration(elapsed).c_str(), eta.c_str());
    std::fflush(out_);
}

void Progress::done() {
    if (terminal_ && drawn_) std::fprintf(out_, "\r\033[K");
    drawn_ = false;
}

}  // namespace appcommon
