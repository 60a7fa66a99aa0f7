// A small raster canvas that writes PNG files, for the benchmarks' charts (the pass-key
// heatmap, the scaling plot) without a plotting library: filled rectangles, lines, and text in a
// built-in 5x7 bitmap font (digits, letters, common punctuation). PNG output uses stored
// (uncompressed) deflate blocks, so no zlib is needed.
//
// Tested by tests/unit/tools/plot_test.cc (PNG structure, CRCs, pixel values).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "comm/status.h"

namespace sieve::tools {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});

  int width() const { return width_; }
  int height() const { return height_; }
  Rgb At(int x, int y) const { return pixels_[size_t(y) * width_ + x]; }

  void FillRect(int x0, int y0, int x1, int y1, Rgb color);  // [x0, x1) × [y0, y1), clipped
  void Line(int x0, int y0, int x1, int y1, Rgb color, int thickness = 1);
  void DashedLine(int x0, int y0, int x1, int y1, Rgb color, int dash = 6);
  // Text with its top-left corner at (x, y); scale multiplies the 5x7 glyphs. Unknown characters
  // draw as a box. Returns the width drawn.
  int Text(int x, int y, std::string_view text, Rgb color, int scale = 1);
  static int TextWidth(std::string_view text, int scale = 1);

  std::vector<uint8_t> EncodePng() const;
  Status WritePng(const std::string& path) const;

 private:
  void Put(int x, int y, Rgb c);
  int width_, height_;
  std::vector<Rgb> pixels_;
};

// A red (0) to green (1) color ramp through yellow, as needle-in-a-haystack charts use.
Rgb AccuracyColor(double accuracy);

}  // namespace sieve::tools
