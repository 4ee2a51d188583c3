// emgpilot MyoWare binary streamer
//
// Samples N_CHANNELS analog inputs (MyoWare sensors) at SAMPLE_RATE_HZ and sends them to the
// host in checksummed binary frames that emgpilot's MyoWareDevice (protocol "binary") reads:
//
//   A5 5A | u16 seq | u8 n_channels | u8 n_samples | n_samples x n_channels x u16 | u16 fletcher16
//
// All fields little-endian. seq is the index of the frame's first sample modulo 65536, so the
// host counts every lost sample exactly. The checksum covers everything after the sync word.
//
// Host side:  emgpilot record --upper-arm-port /dev/ttyACM0 --upper-arm-protocol binary
//                 --upper-arm-bits 10 --upper-arm-rate 1000 ...
// (use --upper-arm-bits 12 on boards where ADC_BITS below is 12).
//
// Wiring (see docs/readme/acquisition.md): MyoWare "RAW" (or "ENV") output -> A0 (biceps),
// A1 (triceps); MyoWare + -> the board's 3.3 V or 5 V (the same voltage as the ADC reference),
// MyoWare - -> GND. Power the laptop from its battery while the sensors touch a person.
//
// Design: sampling is paced by micros(), never by delay(); the serial port is fed only as much
// as its transmit buffer accepts, so a slow link never stalls sampling. A frame that cannot be
// sent in time is dropped whole (the host sees the gap in seq) instead of shifting time.

#include <Arduino.h>

// ----------------------------------------------------------------------------- settings
const uint8_t N_CHANNELS = 2;
const uint8_t CHANNEL_PINS[N_CHANNELS] = {A0, A1};
const uint32_t SAMPLE_RATE_HZ = 1000;
const uint8_t FRAME_SAMPLES = 10;  // 10 ms per frame at 1 kHz
const uint32_t BAUD = 115200;      // 2 ch @ 1 kHz needs ~46 kbit/s; native-USB boards ignore it

#if defined(ARDUINO_ARCH_SAMD) || defined(ARDUINO_ARCH_ESP32) || defined(TEENSYDUINO) || \
    defined(ARDUINO_ARCH_RP2040) || defined(ARDUINO_ARCH_RENESAS)
const uint8_t ADC_BITS = 12;
#define HAS_ANALOG_READ_RESOLUTION 1
#else
const uint8_t ADC_BITS = 10;  // AVR (Uno, Nano, Mega, Leonardo)
#endif

// ----------------------------------------------------------------------------- frames
const uint8_t HEADER_BYTES = 6;
const uint16_t FRAME_BYTES = HEADER_BYTES + 2 * N_CHANNELS * FRAME_SAMPLES + 2;
const uint32_t PERIOD_US = 1000000UL / SAMPLE_RATE_HZ;

uint8_t frames[2][FRAME_BYTES];  // one being filled while the other is being sent
uint8_t filling = 0;             // index of the frame being filled
uint8_t samplesInFrame = 0;
uint16_t sendPos = FRAME_BYTES;  // bytes of frames[1 - filling] already sent (FRAME_BYTES: idle)
uint16_t sampleIndex = 0;        // wraps at 65536 like the host expects
uint32_t nextSampleUs = 0;

static void putU16(uint8_t *p, uint16_t v) {
  p[0] = v & 0xFF;
  p[1] = v >> 8;
}

static uint16_t fletcher16(const uint8_t *data, uint16_t n) {
  uint16_t s1 = 0, s2 = 0;
  for (uint16_t i = 0; i < n; i++) {
    s1 = (s1 + data[i]) % 255;
    s2 = (s2 + s1) % 255;
  }
  return (s2 << 8) | s1;
}

static void startFrame(uint8_t *f) {
  f[0] = 0xA5;
  f[1] = 0x5A;
  putU16(f + 2, sampleIndex);
  f[4] = N_CHANNELS;
  f[5] = FRAME_SAMPLES;
  samplesInFrame = 0;
}

static void takeSample() {
  uint8_t *f = frames[filling];
  uint8_t *p = f + HEADER_BYTES + 2 * N_CHANNELS * samplesInFrame;
  for (uint8_t c = 0; c < N_CHANNELS; c++) {
    putU16(p + 2 * c, (uint16_t)analogRead(CHANNEL_PINS[c]));
  }
  sampleIndex++;
  if (++samplesInFrame < FRAME_SAMPLES) return;
  // frame full: checksum it and hand it to the sender if the sender is free
  putU16(f + FRAME_BYTES - 2, fletcher16(f + 2, FRAME_BYTES - 4));
  if (sendPos >= FRAME_BYTES) {
    filling = 1 - filling;
    sendPos = 0;
  }
  // else: the link is too slow; this frame is overwritten (its samples count as lost)
  startFrame(frames[filling]);
}

static void feedSerial() {
  if (sendPos >= FRAME_BYTES) return;
  int room = Serial.availableForWrite();
  if (room <= 0) return;
  uint16_t n = min((uint16_t)room, (uint16_t)(FRAME_BYTES - sendPos));
  Serial.write(frames[1 - filling] + sendPos, n);
  sendPos += n;
}

void setup() {
  Serial.begin(BAUD);
#ifdef HAS_ANALOG_READ_RESOLUTION
  analogReadResolution(ADC_BITS);
#endif
  startFrame(frames[filling]);
  nextSampleUs = micros();
}

void loop() {
  uint32_t now = micros();
  if ((int32_t)(now - nextSampleUs) >= 0) {
    takeSample();
    nextSampleUs += PERIOD_US;
    // fell more than a frame behind (e.g. a stalled USB link): skip ahead, the host sees the gap
    if ((int32_t)(now - nextSampleUs) > (int32_t)(PERIOD_US * FRAME_SAMPLES)) {
      uint32_t behind = (now - nextSampleUs) / PERIOD_US;
      sampleIndex += behind;
      nextSampleUs += behind * PERIOD_US;
      startFrame(frames[filling]);
    }
  }
  feedSerial();
}
