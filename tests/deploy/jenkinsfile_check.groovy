// Checks declarative Jenkinsfiles without a Jenkins controller:
//   groovy tests/deploy/jenkinsfile_check.groovy Jenkinsfile [more files...]
//
// 1. It must parse with Groovy 2.4 (Debian's `groovy`; Jenkins runs pipelines with Groovy
//    2.4 too), to the syntax tree (phase CONVERSION).
// 2. Its tree must follow the declarative grammar where a parse cannot tell: one `pipeline`
//    block with `agent` and `stages`; known sections in pipelines, stages and `post`, none
//    twice; every stage has exactly one of steps / stages / parallel / matrix; `when` uses
//    known conditions; `environment` holds only NAME = value; steps are step calls (plain
//    Groovy statements such as `def x = ...` or `if` need a `script { }` block); every
//    `params.NAME` is a declared parameter; stage names are unique.
// What it cannot know: which steps and options the controller's plugins provide, and their
// arguments (Jenkins' own linter needs a running controller).
// Prints "<file>:<line>: <problem>" for each finding, and exits 1 when a file has any.

import org.codehaus.groovy.ast.ASTNode
import org.codehaus.groovy.ast.CodeVisitorSupport
import org.codehaus.groovy.ast.expr.BinaryExpression
import org.codehaus.groovy.ast.expr.ClosureExpression
import org.codehaus.groovy.ast.expr.ConstantExpression
import org.codehaus.groovy.ast.expr.MapExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.ast.expr.PropertyExpression
import org.codehaus.groovy.ast.expr.TupleExpression
import org.codehaus.groovy.ast.expr.VariableExpression
import org.codehaus.groovy.ast.stmt.BlockStatement
import org.codehaus.groovy.ast.stmt.ExpressionStatement
import org.codehaus.groovy.ast.stmt.Statement
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.MultipleCompilationErrorsException
import org.codehaus.groovy.control.Phases

PIPELINE = ['agent', 'environment', 'options', 'parameters', 'triggers', 'tools', 'stages',
            'post', 'libraries'] as Set
STAGE = ['agent', 'environment', 'when', 'steps', 'post', 'options', 'input', 'tools',
         'stages', 'parallel', 'matrix', 'failFast'] as Set
BODIES = ['steps', 'stages', 'parallel', 'matrix'] as Set
POST = ['always', 'changed', 'fixed', 'regression', 'aborted', 'failure', 'success',
        'unstable', 'unsuccessful', 'notBuilt', 'cleanup'] as Set
WHEN = ['branch', 'buildingTag', 'changelog', 'changeset', 'changeRequest', 'environment',
        'equals', 'expression', 'tag', 'not', 'allOf', 'anyOf', 'triggeredBy', 'beforeAgent',
        'beforeInput', 'beforeOptions'] as Set
AGENT = ['any', 'none', 'label', 'node', 'docker', 'dockerfile', 'kubernetes'] as Set
PARAMETERS = ['string', 'text', 'booleanParam', 'choice', 'password', 'credentials', 'file',
              'run'] as Set

path = null  // the file being checked, and what was found in it so far
problems = []
declared = [] as Set
used = []

def problem(ASTNode node, String text) {
    problems << "${path}:${node?.lineNumber ?: 0}: ${text}"
}

String shown(Statement statement) {
    def text = statement.text.replaceAll(/\s+/, ' ')
    return text.size() > 60 ? text.take(57) + '...' : text
}

// `name { ... }`, `name(args) { ... }` or `name args`: a call on the implicit this.
MethodCallExpression section(Statement statement) {
    if (statement instanceof ExpressionStatement
            && statement.expression instanceof MethodCallExpression
            && statement.expression.implicitThis) {
        return statement.expression
    }
    return null
}

List arguments(MethodCallExpression call) {
    call.arguments instanceof TupleExpression ? call.arguments.expressions : [call.arguments]
}

List<Statement> block(MethodCallExpression call, String what) {
    def last = arguments(call) ? arguments(call).last() : null
    if (!(last instanceof ClosureExpression)) {
        problem(call, "${what} needs a { } block")
        return []
    }
    def code = last.code
    return code instanceof BlockStatement ? code.statements : [code]
}

// Sections of a block: each a call with a known name, none twice.
List<MethodCallExpression> sections(List<Statement> statements, Set allowed, String where) {
    def seen = [] as Set
    def found = []
    statements.each { statement ->
        def call = section(statement)
        if (call == null) {
            problem(statement, "${where} holds only sections, not `${shown(statement)}`")
        } else if (!(call.methodAsString in allowed)) {
            problem(call, "'${call.methodAsString}' is not a section of ${where}")
        } else if (!seen.add(call.methodAsString)) {
            problem(call, "'${call.methodAsString}' twice in ${where}")
        } else {
            found << call
        }
    }
    return found
}

void checkAgent(MethodCallExpression call) {
    def only = arguments(call)
    if (only.size() == 1 && only[0] instanceof VariableExpression) {
        if (!(only[0].name in ['any', 'none'])) {
            problem(call, "agent ${only[0].name}: only 'any' or 'none' go without a block")
        }
        return
    }
    def inner = block(call, 'agent').collect { section(it) }
    if (inner.size() != 1 || inner[0] == null || !(inner[0].methodAsString in AGENT)) {
        problem(call, "agent { } holds one of ${AGENT.sort()}")
    }
}

// Steps: calls only (with nested blocks, as in withCredentials(...) { }); script { } is free.
void checkSteps(List<Statement> statements, String where) {
    statements.each { statement ->
        def call = section(statement)
        if (call == null) {
            problem(statement, "${where}: `${shown(statement)}` is not a step; " +
                "plain Groovy goes in a script { } block")
            return
        }
        def last = arguments(call) ? arguments(call).last() : null
        if (call.methodAsString != 'script' && last instanceof ClosureExpression) {
            def code = last.code
            checkSteps(code instanceof BlockStatement ? code.statements : [code], where)
        }
    }
}

void checkWhen(List<Statement> statements) {
    statements.each { statement ->
        def call = section(statement)
        if (call == null || !(call.methodAsString in WHEN)) {
            def name = call?.methodAsString ?: shown(statement)
            problem(statement, "when: '${name}' is not a condition")
        } else if (call.methodAsString in ['not', 'allOf', 'anyOf']) {
            checkWhen(block(call, call.methodAsString))
        }
    }
}

void checkEnvironment(List<Statement> statements) {
    statements.each { statement ->
        def expression = statement instanceof ExpressionStatement ? statement.expression : null
        if (!(expression instanceof BinaryExpression && expression.operation.text == '='
                && expression.leftExpression instanceof VariableExpression
                && expression.leftExpression.name ==~ /[A-Za-z_][A-Za-z0-9_]*/)) {
            problem(statement, 'environment holds only NAME = value lines')
        }
    }
}

void checkPost(MethodCallExpression call, String where) {
    sections(block(call, 'post'), POST, "post of ${where}").each { condition ->
        checkSteps(block(condition, condition.methodAsString), "post ${condition.methodAsString}")
    }
}

void checkParameters(MethodCallExpression call) {
    block(call, 'parameters').each { statement ->
        def parameter = section(statement)
        if (parameter == null || !(parameter.methodAsString in PARAMETERS)) {
            problem(statement, "parameters: not a parameter type of ${PARAMETERS.sort()}")
            return
        }
        def named = arguments(parameter).find { it instanceof MapExpression }
        def name = named?.mapEntryExpressions?.find { it.keyExpression.text == 'name' }
        if (name?.valueExpression instanceof ConstantExpression) {
            declared << name.valueExpression.value
        } else {
            problem(parameter, 'a parameter needs name: with a constant string')
        }
    }
}

void checkStages(MethodCallExpression call, Set names) {
    def stages = block(call, call.methodAsString)
    if (!stages) {
        problem(call, "${call.methodAsString} { } holds at least one stage")
    }
    stages.each { statement ->
        def stage = section(statement)
        if (stage == null || stage.methodAsString != 'stage') {
            problem(statement, "${call.methodAsString} { } holds only stage('name') { } blocks")
            return
        }
        def name = arguments(stage)[0]
        if (!(name instanceof ConstantExpression && name.value instanceof String)) {
            problem(stage, "a stage's name is a constant string")
        } else if (!names.add(name.value)) {
            problem(stage, "stage '${name.value}' twice")
        }
        checkStage(stage, name.text, names)
    }
}

void checkStage(MethodCallExpression stage, String name, Set names) {
    def found = sections(block(stage, "stage '${name}'"), STAGE, "stage '${name}'")
    def bodies = found.findAll { it.methodAsString in BODIES }
    if (bodies.size() != 1) {
        problem(stage, "stage '${name}' needs exactly one of ${BODIES.sort()}")
    }
    found.each { section ->
        switch (section.methodAsString) {
            case 'agent': checkAgent(section); break
            case 'steps': checkSteps(block(section, 'steps'), "stage '${name}'"); break
            case 'stages': checkStages(section, names); break
            case 'parallel': checkStages(section, names); break
            case 'when': checkWhen(block(section, 'when')); break
            case 'environment': checkEnvironment(block(section, 'environment')); break
            case 'post': checkPost(section, "stage '${name}'"); break
        }
    }
}

boolean check(String file) {
    path = file
    problems = []
    declared = [] as Set
    used = []

    // --- 1. Parse ---------------------------------------------------------------------------
    def unit = new CompilationUnit()
    unit.addSource(new File(path).name, new File(path).text)
    try {
        unit.compile(Phases.CONVERSION)
    } catch (MultipleCompilationErrorsException error) {
        System.err.println("${path}: does not parse:\n${error.message}")
        return false
    }
    def module = unit.AST.modules[0]

    // --- 2. The declarative structure --------------------------------------------------------
    def top = module.statementBlock.statements
    def pipeline = top.size() == 1 ? section(top[0]) : null
    if (pipeline == null || pipeline.methodAsString != 'pipeline') {
        problem(top ? top[0] : null, 'the file is one pipeline { } block')
    } else {
        def found = sections(block(pipeline, 'pipeline'), PIPELINE, 'pipeline')
        ['agent', 'stages'].each { required ->
            if (!found.any { it.methodAsString == required }) {
                problem(pipeline, "pipeline needs ${required}")
            }
        }
        def names = [] as Set
        found.each { section ->
            switch (section.methodAsString) {
                case 'agent': checkAgent(section); break
                case 'stages': checkStages(section, names); break
                case 'environment': checkEnvironment(block(section, 'environment')); break
                case 'parameters': checkParameters(section); break
                case 'post': checkPost(section, 'pipeline'); break
                case 'triggers':
                case 'options':
                    def name = section.methodAsString
                    checkSteps(block(section, name), name); break
            }
        }
    }

    // Every params.NAME is declared.
    pipeline?.visit(new CodeVisitorSupport() {
        void visitPropertyExpression(PropertyExpression expression) {
            if (expression.objectExpression instanceof VariableExpression
                    && expression.objectExpression.name == 'params') {
                used << expression
            }
            super.visitPropertyExpression(expression)
        }
    })
    used.each { expression ->
        if (!(expression.propertyAsString in declared)) {
            problem(expression, "params.${expression.propertyAsString} is not a declared parameter")
        }
    }

    problems.each { System.err.println(it) }
    if (!problems) {
        println("${path}: parses, and its declarative structure is sound")
    }
    return !problems
}

def results = args.collect { check(it) }  // every file, even after a bad one
System.exit(results.every() ? 0 : 1)
