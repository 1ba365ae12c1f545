// The prompt set llem ships (`dataset: builtin`). Written for llem, varied on purpose: one-line
// questions, instructions with context, and long passages to summarise, so prefill and decode are
// both exercised. Never edit a prompt in place: results across versions compare only when the
// prompts are identical; add a new set name instead.
export const BUILTIN_DATASET_NAME = 'builtin';
export const BUILTIN_DATASET_VERSION = 1;

const PASSAGE_RIVER =
  'The river begins as snowmelt high in the mountains, runs through narrow valleys where small towns grew ' +
  'around mills and bridges, and widens on the plain into a slow brown current that carries barges of grain ' +
  'and timber. For centuries the towns along its banks argued over fishing rights, tolls and the height of ' +
  'dams. In the last hundred years the river has been straightened, dredged and lined with levees, which ' +
  'protected farmland from ordinary floods but made the rare great flood faster and more destructive.';

const PASSAGE_DATACENTER =
  'A data center turns electricity into computation and heat. The servers draw power in proportion to their ' +
  'load, the cooling system removes the heat they produce, and the power distribution equipment loses a few ' +
  'percent on the way. Operators report power usage effectiveness, the ratio of total facility energy to ' +
  'the energy delivered to the IT equipment. A ratio of 1.1 means that for every kilowatt-hour used by the ' +
  'servers, another tenth is spent on cooling and conversion losses. Accelerators have raised the power ' +
  'density of a rack from a few kilowatts to tens of kilowatts, and liquid cooling has moved from a niche ' +
  'to the default in new designs.';

const PASSAGE_LETTER =
  'Dear neighbours, the committee met on Tuesday to discuss the garden on the corner of the street. Several ' +
  'of you asked whether the beds could be shared by more households, whether the water barrel could be ' +
  'replaced before summer, and who is responsible for the tools in the shed. We agreed to divide the large ' +
  'bed into four smaller plots, to buy a new barrel with the money left from the spring fair, and to keep a ' +
  'list on the shed door of who borrowed which tool. The next meeting is on the first Monday of the month.';

export const BUILTIN_PROMPTS: readonly string[] = [
  'What is the capital of France?',
  'Explain in two sentences why the sky is blue.',
  'Write a haiku about a train station at night.',
  'List five uses of a paperclip that are not holding paper.',
  'What is the difference between weather and climate?',
  'Translate into French: "The library opens at nine in the morning."',
  'Give three reasons why people keep diaries.',
  'Describe the smell of rain to someone who has never experienced it.',
  'Explain what a transformer language model does, for a high-school student.',
  'Why do batteries lose capacity as they age?',
  'Write a short story, about one hundred words, about a lighthouse keeper who finds a message in a bottle.',
  'Summarise the main causes of the First World War in a paragraph.',
  'A train leaves at 14:10 and arrives at 17:45. How long is the journey? Show your reasoning.',
  'What are the advantages and disadvantages of working from home? Answer as a balanced list.',
  'Explain the difference between energy and power, with an example from a household appliance.',
  'Write a polite email declining an invitation to speak at a conference next month.',
  'How does a heat pump move heat from a cold place to a warm one?',
  'Describe a typical day of a baker in a small town, from before dawn to the evening.',
  'Compare bicycles and electric scooters as ways to commute five kilometres in a city.',
  'Write a limerick about a cat who learns to code.',
  'What questions should someone ask before adopting a dog? Give at least six.',
  'Explain recursion using an example that does not involve computers.',
  'Why is measuring the energy use of software harder than measuring its speed?',
  'Give step-by-step instructions for making a cup of tea with loose leaves.',
  'Describe the water cycle and name each stage.',
  `Summarise the following passage in three sentences.\n\n${PASSAGE_RIVER}`,
  `Read the passage and answer: what trade-off did the levees create?\n\n${PASSAGE_RIVER}`,
  `Summarise the following passage for a newspaper reader in one paragraph.\n\n${PASSAGE_DATACENTER}`,
  `Using the passage below, explain what a power usage effectiveness of 1.25 means.\n\n${PASSAGE_DATACENTER}`,
  `Rewrite the following letter so that it is half as long and keeps every decision.\n\n${PASSAGE_LETTER}`,
  `List every decision taken at the meeting described below.\n\n${PASSAGE_LETTER}`,
  `Here are three texts. Write one sentence about what each is about, then say which is the most formal.\n\n1. ${PASSAGE_RIVER}\n\n2. ${PASSAGE_DATACENTER}\n\n3. ${PASSAGE_LETTER}`,
  'Write a dialogue between a customer and a shopkeeper about a broken umbrella, eight lines long.',
  'Explain why leap years exist and state the rule for which years are leap years.',
  'Name the planets of the solar system in order from the sun and give one fact about each.',
  'Propose a simple experiment a child could do at home to show that air has weight.',
  'What is a prime number? List the primes below fifty.',
  'Describe how a bill becomes a law in a parliamentary democracy, in general terms.',
  'Write the opening paragraph of a mystery novel set in a snowbound hotel.',
  'Explain what a median is and why it can be more useful than an average for incomes.',
  'Give advice to a student preparing for an oral exam in a foreign language.',
  'Why do onions make people cry, and how can it be avoided?',
  'Describe the rules of chess for the knight and the bishop.',
  'Write a product description for a reusable water bottle, under sixty words.',
  'Explain the greenhouse effect in plain language.',
  'What should a good bug report contain? Answer as a checklist.',
  'Invent a recipe that uses only potatoes, onions, eggs and salt.',
  'Explain why the moon always shows the same face to the Earth.',
];
