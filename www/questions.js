// VSI-Bench's question types as presets: the benchmark's phrasing with objects to edit, options for
// the multiple-choice types, and the post prompt each checkpoint generation was evaluated with
// (the same text as src/eval/prompt.rs builds for `spatial-mllm eval`).

export const PRESETS = [
  { type: 'object_counting', label: 'Counting', question: 'How many chairs are in this room?' },
  { type: 'object_abs_distance', label: 'Absolute distance', question: 'Measuring from the closest point of each object, what is the direct distance between the sofa and the door (in meters)?' },
  { type: 'object_size_estimation', label: 'Object size', question: 'What is the length of the longest dimension (length, width, or height) of the table, measured in centimeters?' },
  { type: 'room_size_estimation', label: 'Room size', question: 'What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of the combined space.' },
  { type: 'object_rel_distance', label: 'Relative distance', question: 'Measuring from the closest point of each object, which of these objects (lamp, bed, tv, sink) is the closest to the sofa?', options: ['A. lamp', 'B. bed', 'C. tv', 'D. sink'] },
  { type: 'object_rel_direction', label: 'Relative direction', question: 'If I am standing by the sofa and facing the tv, is the door to my left, right, or back? An object is to my back if I would have to turn at least 135 degrees in order to face it.', options: ['A. left', 'B. right', 'C. back'] },
  { type: 'route_planning', label: 'Route plan', question: "You are a robot beginning at the door facing the bed. You want to navigate to the window. You will perform the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn left,' or 'turn right.'): 1. Go forward until the bed 2. [please fill in] 3. Go forward until the window. You have reached the final destination.", options: ['A. Turn Left', 'B. Turn Right', 'C. Turn Back'] },
  { type: 'obj_appearance_order', label: 'Appearance order', question: 'What will be the first-time appearance order of the following categories in the video: chair, table, lamp, bed?', options: ['A. chair, table, lamp, bed', 'B. table, chair, bed, lamp', 'C. lamp, bed, chair, table', 'D. bed, lamp, table, chair'] },
];

const V11_MCA = "Answer with the option's letter from the given choices directly.";
const V11_NA = 'Please answer the question using a single word or phrase.';
const V10_MC = " Please answer with the option's letter from the given choices (e.g., A, B, etc.) within the <answer> </answer> tags.";
const V10_NA = ' Please answer with the only numerical value (e.g., 42, 3.14, etc.) within the <answer> </answer> tags.';

/** The text a preset puts in the question box, in the evaluation prompt of `modelKind`. */
export function presetText(preset, modelKind) {
  const mc = !!preset.options;
  if (modelKind === 'spatial-mllm-v1.0') {
    return mc ? `${preset.question}Options:\n${preset.options.map((o) => `${o}\n`).join('')}${V10_MC}` : `${preset.question}${V10_NA}`;
  }
  return mc ? `${preset.question}\nOptions:\n${preset.options.join('\n')}\n${V11_MCA}` : `${preset.question}\n${V11_NA}`;
}
