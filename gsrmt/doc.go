package gsrmt

/*
Where each section of the model specification (MODEL.md) lives in this
package. The package comment is in config.go.

	1. What the paper states      (no code: the readings are marked in the spec)
	2. Macro-architecture         model.go: New, Model.Forward, stage.forward, block.forward, dropPath
	                              params.go: the layers (linear, conv2d, batchNorm, layerNorm) and their init
	                              plan.go: NewPlan (stem, stage and block sizes, drop path rates), Plan.Maps
	3. Presets                    config.go: PresetConfig, Config, Validate
	4. Shared attention parts     attention.go: attention.forward (q, k, v, LCE, output), rotate (RoPE)
	                              tables.go: Gammas, RopeTables
	5. Windows                    plan.go: StagePlan.Layout (collapse, padding), BlockPlan.Shift, Layout.Shift
	                              tables.go: RegionIDs, windowPassMasks, windowTable
	                              attention.go: attention.windowed (pad, shift, partition, attend, reverse,
	                              unshift, crop), attention.global, stageTables (built once per stage)
	6. Decomposed retention       attention.go: attention.decomposed, attention.pass
	7. The three variants         plan.go: Variant, newStagePlan (value gate, G1 gate width, row norm, full 2-D)
	                              attention.go: weighting, softmaxDecay (7.1, 7.3), sigmoidDecay (7.2),
	                              attention.g1 (7.1), attention.full2D (7.3)
	                              tables.go: decayBias, alibiBias, decayPow, manhattanBias
	8. Inputs                     outside this package (datasets)
	9. Parameter names            model.go: New, newStage, newBlock; params.go: registry, Model.Params order
	                              limits.go: StateShapes (names and shapes without tensors)
	10. Reference behaviours      model_test.go, tables_test.go, plan_test.go; tests/parity_test.go

Around them: scope.go is the op vocabulary of the forward (each op registers
its result for freeing), info.go describes a plan (Describe: parameters,
maps, windows, MACs), limits.go bounds a config before anything is built.
*/
